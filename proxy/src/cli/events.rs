//! `strangler events tail` and `strangler events replay`: read what the proxy published, from
//! the configured bus (the log folder, or the broker through its sink), and publish stored
//! events again with their original ids (consumers deduplicate by id).

mod replay;

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use crate::config::{BusConfig, BusKind};
use crate::events::Event;
use crate::events::segment::{self, Item, Reader};
use crate::events::sink::{ReadFrom, Sink, log};

use replay::{replay, target_bus};

/// How often `--follow` looks for new events.
const POLL: Duration = Duration::from_millis(500);
/// Widest data summary printed.
const SUMMARY_WIDTH: usize = 160;
/// Ids remembered by `--follow` on a broker, to print each event once.
const SEEN: usize = 100_000;

/// `strangler events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the latest events, one line each (time, type, route, correlation, data).
    Tail {
        /// Only events of this type, or whose type starts with it (`strangler.shadow`).
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Only events about this route.
        #[arg(long)]
        route: Option<String>,
        /// Keep printing new events until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
        /// Latest events printed first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The routes file (its `[bus]` says where events are).
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
    /// Publish stored events again, with their original ids, to a bus.
    Replay {
        /// Where to start: a log offset (`1200`), a time (`2025-01-31T12:00:00Z`) or an age
        /// (`1h` = one hour ago).
        #[arg(long, value_name = "TIME|OFFSET")]
        from: String,
        /// Only events of this type, or whose type starts with it.
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Only events about this route.
        #[arg(long)]
        route: Option<String>,
        /// The bus to publish to.
        #[arg(long, value_enum)]
        to: Target,
        /// Broker URL of the target (default: `[bus] url` when the kinds match); for kafka,
        /// the brokers (`127.0.0.1:9092,…`, default `[bus] brokers`).
        #[arg(long)]
        url: Option<String>,
        /// Log folder of a `log` target (default: `[bus] path`).
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// Events read from a broker at most (a log is read to its end).
        #[arg(long, default_value_t = 100_000)]
        limit: usize,
        /// The routes file (its `[bus]` says where events are read from).
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
}

/// A replay target.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Target {
    /// NATS JetStream.
    Nats,
    /// Redis Streams.
    Redis,
    /// An embedded log folder.
    Log,
    /// Kafka (`--url` lists the brokers).
    Kafka,
}

/// Which events a command prints or replays.
#[derive(Debug, Default)]
struct Filter {
    kind: Option<String>,
    route: Option<String>,
}

impl Filter {
    fn matches(&self, event: &Event) -> bool {
        self.kind
            .as_deref()
            .is_none_or(|k| event.kind.starts_with(k))
            && self
                .route
                .as_deref()
                .is_none_or(|r| event.subject.as_deref() == Some(r))
    }

    fn is_empty(&self) -> bool {
        self.kind.is_none() && self.route.is_none()
    }
}

/// Runs `strangler events …`.
pub async fn run(command: EventsCommand) -> anyhow::Result<ExitCode> {
    match command {
        EventsCommand::Tail {
            kind,
            route,
            follow,
            limit,
            config,
        } => {
            let (bus, base_dir) = load(&config)?;
            let filter = Filter { kind, route };
            tail(
                &bus,
                &base_dir,
                &filter,
                limit,
                follow,
                &mut std::io::stdout(),
            )
            .await?;
        }
        EventsCommand::Replay {
            from,
            kind,
            route,
            to,
            url,
            path,
            limit,
            config,
        } => {
            let (bus, base_dir) = load(&config)?;
            let from = parse_from(&from)?;
            let target = target_bus(&bus, &base_dir, to, url, path)?;
            let filter = Filter { kind, route };
            replay(&bus, &base_dir, from, &filter, &target, limit).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `[bus]` of the routes file and the folder its relative paths start from.
fn load(config: &Path) -> anyhow::Result<(BusConfig, PathBuf)> {
    let config = crate::config::load(config).map_err(|diags| {
        anyhow::anyhow!(
            "{diags}\n{} error(s) in {}",
            diags.0.len(),
            config.display()
        )
    })?;
    let bus = config.raw().bus.clone();
    if bus.kind == BusKind::None {
        bail!(
            "no event bus is configured: set [bus] kind = \"log\" (or nats, redis, kafka) in the routes file"
        );
    }
    Ok((bus, config.base_dir().to_owned()))
}

/// `--from`: an offset, an RFC 3339 time, or an age such as `1h`.
fn parse_from(text: &str) -> anyhow::Result<ReadFrom> {
    let text = text.trim();
    if let Ok(offset) = text.parse::<u64>() {
        return Ok(ReadFrom::Offset(offset));
    }
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(ReadFrom::Time(time));
    }
    if let Ok(age) = humantime::parse_duration(text) {
        let time = SystemTime::now()
            .checked_sub(age)
            .context("--from is further back than the clock goes")?;
        return Ok(ReadFrom::Time(time));
    }
    bail!(
        "--from `{text}` is neither an offset (1200), a time (2025-01-31T12:00:00Z) nor an age (1h)"
    )
}

// === tail ===

async fn tail(
    bus: &BusConfig,
    base_dir: &Path,
    filter: &Filter,
    limit: usize,
    follow: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if bus.kind == BusKind::Log {
        return tail_log(&log::folder(bus, base_dir), filter, limit, follow, out).await;
    }
    let sink = Sink::connect(bus, base_dir)
        .await
        .with_context(|| format!("cannot reach the {:?} bus", bus.kind))?;
    let window = if filter.is_empty() {
        limit
    } else {
        limit.max(10_000)
    };
    let mut seen = Seen::default();
    let events = sink.read(ReadFrom::Tail(window), window).await?;
    let matching: Vec<&Event> = events.iter().filter(|e| filter.matches(e)).collect();
    for event in &events {
        seen.insert(&event.id);
    }
    for event in &matching[matching.len().saturating_sub(limit)..] {
        writeln!(out, "{}", line(event))?;
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep(POLL) => {}
        }
        for event in sink.read(ReadFrom::Tail(1000), 1000).await? {
            if seen.insert(&event.id) && filter.matches(&event) {
                writeln!(out, "{}", line(&event))?;
            }
        }
    }
    Ok(())
}

async fn tail_log(
    dir: &Path,
    filter: &Filter,
    limit: usize,
    follow: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!(
            "no event log at {} yet (has the proxy published anything?)",
            dir.display()
        );
    }
    // Without a filter the last `limit` lines are the answer; with one, every line is read.
    let start = if filter.is_empty() {
        segment::end_offset(dir)?.saturating_sub(limit as u64)
    } else {
        0
    };
    let mut reader = Reader::at_offset(dir, start);
    let mut last: VecDeque<Event> = VecDeque::with_capacity(limit.min(10_000));
    while let Some(item) = reader.next_item()? {
        if let Some(event) = keep(item, filter) {
            if last.len() >= limit {
                last.pop_front();
            }
            if limit > 0 {
                last.push_back(event);
            }
        }
    }
    for event in &last {
        writeln!(out, "{}", line(event))?;
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep(POLL) => {}
        }
        while let Some(item) = reader.next_item()? {
            if let Some(event) = keep(item, filter) {
                writeln!(out, "{}", line(&event))?;
            }
        }
    }
    Ok(())
}

/// The event of `item` if it passes `filter`; damaged lines are reported on stderr.
fn keep(item: Item, filter: &Filter) -> Option<Event> {
    match item {
        Item::Event(_, event) => filter.matches(&event).then_some(event),
        Item::Bad { offset, error } => {
            eprintln!("strangler: skipping damaged line at offset {offset}: {error}");
            None
        }
        Item::Torn { segment } => {
            eprintln!(
                "strangler: skipping a torn last line in segment {segment} (a crash mid-write)"
            );
            None
        }
        Item::Gap { from, to } => {
            eprintln!(
                "strangler: events {from}..{to} were deleted (retention) before they were read"
            );
            None
        }
    }
}

/// Ids already printed, bounded.
#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    /// Whether `id` is new (and remembers it).
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= SEEN {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(id.to_owned());
        self.set.insert(id.to_owned());
        true
    }
}

/// One readable line: time, type, route, correlation, data summary.
pub fn line(event: &Event) -> String {
    format!(
        "{:<24} {:<32} {:<16} {:<20} {}",
        event.time,
        event.kind,
        event.subject.as_deref().unwrap_or("-"),
        event.correlationid,
        summary(&event.data.value())
    )
}

/// `data` as `key=value` pairs (nested values abbreviated), cut to [`SUMMARY_WIDTH`].
fn summary(data: &Value) -> String {
    let text = match data {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => scalar(other),
    };
    if text.chars().count() <= SUMMARY_WIDTH {
        return text;
    }
    let mut cut: String = text.chars().take(SUMMARY_WIDTH - 1).collect();
    cut.push('…');
    cut
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => s.clone(),
        Value::Object(map) => format!("{{{} keys}}", map.len()),
        Value::Array(items) => format!("[{} items]", items.len()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;

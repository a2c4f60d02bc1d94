//! `strangler events replay`: stored events published again, with their original ids, to
//! another bus. Only what is stored when the replay starts is sent, and the bus read from is
//! never the target (that would duplicate every event).

use std::path::Path;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Filter, Target, keep};
use crate::config::{BusConfig, BusKind};
use crate::events::Event;
use crate::events::segment::{self, Reader};
use crate::events::sink::{ReadFrom, Sink, log};

/// The bus `--to` names: the configured one's settings, with the kind, URL or folder given.
pub(super) fn target_bus(
    bus: &BusConfig,
    base_dir: &Path,
    to: Target,
    url: Option<String>,
    path: Option<PathBuf>,
) -> anyhow::Result<BusConfig> {
    let kind = match to {
        Target::Nats => BusKind::Nats,
        Target::Redis => BusKind::Redis,
        Target::Log => BusKind::Log,
        Target::Kafka => BusKind::Kafka,
    };
    if kind == BusKind::Kafka {
        // Kafka names its brokers, not a URL: `--url 127.0.0.1:9092,127.0.0.1:9093`.
        let brokers = match (url, bus.kind) {
            (Some(list), _) => list,
            (None, BusKind::Kafka) => bus.brokers.clone().unwrap_or_default(),
            (None, other) => bail!(
                "--to kafka needs --url with the brokers, e.g. --url 127.0.0.1:9092 (the routes file's bus is {other:?})"
            ),
        };
        if bus.kind == BusKind::Kafka && bus.brokers.as_deref() == Some(brokers.as_str()) {
            bail!(
                "the target is the bus the events are read from; replaying would duplicate every event (pass --url with other brokers)"
            );
        }
        return Ok(BusConfig {
            kind,
            brokers: Some(brokers),
            ..bus.clone()
        });
    }
    let url = match (url, kind) {
        (_, BusKind::Log) => None,
        (Some(url), _) => Some(url),
        (None, kind) if kind == bus.kind => bus.url.clone(),
        (None, _) => bail!(
            "--to {kind:?} needs --url (the routes file's bus is {:?})",
            bus.kind
        ),
    };
    let path = match path {
        Some(path) => Some(path.display().to_string()),
        None => Some(log::folder(bus, base_dir).display().to_string()),
    };
    let target = BusConfig {
        kind,
        url,
        path,
        ..bus.clone()
    };
    let same = match kind {
        BusKind::Log => {
            bus.kind == BusKind::Log
                && same_dir(&log::folder(bus, base_dir), &log::folder(&target, base_dir))
        }
        _ => bus.kind == kind && bus.url == target.url,
    };
    if same {
        bail!(
            "the target is the bus the events are read from; replaying would duplicate every event (pass --url or --path for another target)"
        );
    }
    Ok(target)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

pub(super) async fn replay(
    bus: &BusConfig,
    base_dir: &Path,
    from: ReadFrom,
    filter: &Filter,
    target: &BusConfig,
    limit: usize,
) -> anyhow::Result<()> {
    let sink = Sink::connect(target, base_dir)
        .await
        .with_context(|| format!("cannot open the {:?} target", target.kind))?;
    let name = match target.kind {
        BusKind::Log => log::folder(target, base_dir).display().to_string(),
        _ => target
            .url
            .clone()
            .or_else(|| target.brokers.clone())
            .unwrap_or_default(),
    };
    let mut sent = 0u64;
    let mut batch = Vec::with_capacity(bus.batch);
    if bus.kind == BusKind::Log {
        let dir = log::folder(bus, base_dir);
        // Only what is there now: events written meanwhile are not replayed.
        let end = segment::end_offset(&dir)?;
        let (mut reader, since) = match from {
            ReadFrom::Offset(offset) => (Reader::at_offset(&dir, offset), None),
            ReadFrom::Time(time) => (Reader::at_time(&dir, time)?, Some(time)),
            ReadFrom::Start | ReadFrom::Tail(_) => (Reader::at_offset(&dir, 0), None),
        };
        while reader.offset() < end {
            let Some(item) = reader.next_item()? else {
                break;
            };
            let at = format!("at offset {}", reader.offset().saturating_sub(1));
            let Some(event) = keep(item, filter) else {
                continue;
            };
            if since.is_some_and(|t| log::happened_before(&event, t)) {
                continue;
            }
            batch.push(event);
            if batch.len() >= bus.batch {
                send(&sink, &mut batch, &mut sent, &at).await?;
            }
        }
        let at = format!("at offset {}", reader.offset());
        send(&sink, &mut batch, &mut sent, &at).await?;
    } else {
        let source = Sink::connect(bus, base_dir)
            .await
            .with_context(|| format!("cannot reach the {:?} bus", bus.kind))?;
        let events = source.read(from, limit).await?;
        if events.len() == limit {
            eprintln!("strangler: read the first {limit} events; pass --limit to read more");
        }
        for event in events.into_iter().filter(|e| filter.matches(e)) {
            let at = format!("at event {}", event.id);
            batch.push(event);
            if batch.len() >= bus.batch {
                send(&sink, &mut batch, &mut sent, &at).await?;
            }
        }
        send(&sink, &mut batch, &mut sent, "at the end").await?;
    }
    sink.flush();
    println!("replayed {sent} events to {:?} {name}", target.kind);
    Ok(())
}

/// Publishes `batch` (emptying it) and reports progress every 10 000 events.
async fn send(sink: &Sink, batch: &mut Vec<Event>, sent: &mut u64, at: &str) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    sink.publish(batch)
        .await
        .with_context(|| format!("replayed {sent} events, then failed {at}"))?;
    let before = *sent;
    *sent += batch.len() as u64;
    batch.clear();
    if before / 10_000 != *sent / 10_000 {
        eprintln!("… {sent} events replayed");
    }
    Ok(())
}

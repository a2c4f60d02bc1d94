//! `strangler replay`: sends a route's captured mismatches (see `shadow::corpus`) again, to a
//! candidate that is meant to be fixed, and says of each whether it is resolved.
//!
//! Each new answer is compared with the *captured legacy answer* by the same
//! [`diff::compare`] and the route's `diff` rules from the config, so "resolved" means what
//! the proxy's verdict would say: `equal`, or `noise` (every difference ignored by a rule, or
//! at a pointer the route's baseline had learned as noise when the mismatch was captured).
//! Requests go as captured, except that redacted headers are left out (never sent as
//! `[redacted]`), hop-by-hop headers are dropped and the route's `shadow.set_headers` are
//! applied again. At most `--concurrency` requests are in flight.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderName, HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::diffs::{DiffEntry, pointer_lines};
use crate::diff::{self, DiffRules, Difference, NoiseBaseline, Observed, Verdict};
use crate::forward::headers::strip_hop_by_hop;
use crate::shadow::CAPTURE_LIMIT;
use crate::shadow::corpus::{self, Mismatch};

/// The longest one replayed request may take, answer body included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What `strangler replay` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The route whose mismatches are replayed.
    pub route: String,
    /// Base URL of the candidate to replay against.
    pub to: String,
    /// The routes file (for the route's diff rules and the corpus folder).
    pub config: PathBuf,
    /// The corpus folder, instead of `[shadow] corpus`.
    pub corpus: Option<PathBuf>,
    /// Requests in flight at most.
    pub concurrency: usize,
}

/// What the replay of one mismatch came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The new answer is `equal` to the captured legacy one, or differs only by noise.
    Resolved(Verdict),
    /// It still differs: the differences that count, and how many there are in all.
    Unresolved {
        /// The kept differences that are not known noise.
        differences: Vec<Difference>,
        /// All differences that are not known noise, kept or not.
        total: usize,
    },
    /// It could not be replayed or judged, and why.
    Failed(String),
}

/// Everything a replay needs besides the mismatches.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The route's comparison rules.
    pub rules: DiffRules,
    /// Headers the route sets on its copies (re-applied: they were redacted).
    pub set_headers: BTreeMap<String, String>,
    /// `scheme://authority` and path prefix of the candidate.
    pub base: String,
}

impl Plan {
    /// The plan for `route` in the loaded config, replaying to `to`.
    pub fn new(config: &crate::config::Config, route: &str, to: &str) -> anyhow::Result<Self> {
        let raw = config.raw();
        let Some(found) = raw.routes.iter().find(|r| r.id == route) else {
            let known: Vec<&str> = raw.routes.iter().map(|r| r.id.as_str()).collect();
            bail!(
                "no route `{route}` in the config; known routes: {}",
                known.join(", ")
            );
        };
        let rules = match &found.diff {
            Some(table) => DiffRules::new(table)
                .map_err(|e| anyhow::anyhow!("route `{route}` has invalid diff rules: {e}"))?,
            None => DiffRules::default(),
        };
        Ok(Self {
            rules,
            set_headers: found
                .shadow
                .as_ref()
                .map(|s| s.set_headers.clone())
                .unwrap_or_default(),
            base: base_url(to)?,
        })
    }
}

/// `http://host:port/prefix/` → `http://host:port/prefix` (captured paths are appended).
fn base_url(to: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(to)
        .with_context(|| format!("--to \"{to}\" is not a URL; write e.g. http://127.0.0.1:9000"))?;
    if url.scheme() != "http" {
        bail!("--to must be an http:// URL, got \"{to}\"");
    }
    let Some(host) = url.host_str() else {
        bail!("--to \"{to}\" has no host");
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let prefix = url.path().trim_end_matches('/');
    Ok(format!("http://{host}{port}{prefix}"))
}

/// Runs `strangler replay`: exit 0 when every mismatch is resolved, 1 otherwise.
pub async fn replay(options: &Options) -> anyhow::Result<ExitCode> {
    let config = crate::config::load(&options.config).map_err(|diags| {
        anyhow::anyhow!(
            "{diags}\n{} is not valid; fix it first",
            options.config.display()
        )
    })?;
    let plan = Plan::new(&config, &options.route, &options.to)?;
    let folder = options
        .corpus
        .clone()
        .unwrap_or_else(|| config.base_dir().join(&config.raw().shadow.corpus));
    let loaded = {
        let (folder, route) = (folder.clone(), options.route.clone());
        tokio::task::spawn_blocking(move || corpus::read_route(&folder, &route)).await?
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(corpus::CorpusError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            bail!(
                "no corpus at {}: the proxy has captured nothing there yet (pass --corpus DIR if [shadow] corpus points elsewhere)",
                folder.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    if loaded.unreadable > 0 {
        eprintln!(
            "note: {} unreadable line(s) in the corpus skipped",
            loaded.unreadable
        );
    }
    let total = loaded.mismatches.len();
    if total == 0 {
        println!(
            "no captured mismatches of route `{}` in {}",
            options.route,
            folder.display()
        );
        println!("0 of 0 mismatches resolved");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "replaying {total} captured mismatch(es) of route `{}` from {} to {}",
        options.route,
        folder.display(),
        plan.base
    );
    let client = client();
    let concurrency = options.concurrency.max(1);
    let mut outcomes = futures_util::stream::iter(&loaded.mismatches)
        .map(|m| replay_one(&client, &plan, m))
        .buffered(concurrency);
    let step = (total / 20).max(10);
    let (mut done, mut resolved) = (0, 0);
    while let Some(outcome) = outcomes.next().await {
        let mismatch = &loaded.mismatches[done];
        done += 1;
        if matches!(outcome, Outcome::Resolved(_)) {
            resolved += 1;
        }
        print!("{}", describe(mismatch, &outcome));
        if total >= 50 && done % step == 0 && done < total {
            eprintln!("progress: {done} of {total} replayed, {resolved} resolved so far");
        }
    }
    println!("{resolved} of {total} mismatches resolved");
    Ok(if resolved == total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The client replayed requests go through.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one captured request to the candidate and judges its answer.
pub async fn replay_one(
    client: &Client<HttpConnector, Full<Bytes>>,
    plan: &Plan,
    mismatch: &Mismatch,
) -> Outcome {
    let request = &mismatch.request;
    if request.body.truncated {
        return Outcome::Failed(format!(
            "not replayable: only {} of the request body's {} bytes were captured",
            BODY_KEPT.min(request.body.len),
            request.body.len
        ));
    }
    let built = build_request(plan, mismatch);
    let request = match built {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("not replayable: {e:#}")),
    };
    let fetch = async {
        let response = client.request(request).await.map_err(|e| {
            let cause =
                std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s}"));
            format!("cannot reach {}{cause}", plan.base)
        })?;
        let (head, body) = response.into_parts();
        let body = Limited::new(body, CAPTURE_LIMIT)
            .collect()
            .await
            .map_err(|e| format!("the answer's body could not be read: {e}"))?
            .to_bytes();
        Ok::<_, String>(Observed {
            status: head.status.as_u16(),
            headers: head.headers,
            body,
        })
    };
    match tokio::time::timeout(TIMEOUT, fetch).await {
        Err(_) => Outcome::Failed(format!("no answer within {TIMEOUT:?}")),
        Ok(Err(e)) => Outcome::Failed(e),
        Ok(Ok(answer)) => judge(mismatch, &answer, &plan.rules),
    }
}

/// [`corpus::BODY_CAP`], named for messages.
const BODY_KEPT: usize = corpus::BODY_CAP;

fn build_request(plan: &Plan, mismatch: &Mismatch) -> anyhow::Result<Request<Full<Bytes>>> {
    let captured = &mismatch.request;
    let method = Method::from_bytes(captured.method.as_bytes())
        .with_context(|| format!("`{}` is not a method", captured.method))?;
    let slash = if captured.path.starts_with('/') {
        ""
    } else {
        "/"
    };
    let uri: http::Uri = format!("{}{slash}{}", plan.base, captured.path)
        .parse()
        .with_context(|| format!("`{}` is not a request target", captured.path))?;
    let mut headers = mismatch.replay_headers();
    strip_hop_by_hop(&mut headers, false);
    headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &plan.set_headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(captured.body.bytes()?))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Compares a new candidate answer with the captured legacy one, as the proxy would.
pub fn judge(mismatch: &Mismatch, answer: &Observed, rules: &DiffRules) -> Outcome {
    if mismatch.legacy.body.truncated {
        return Outcome::Failed(format!(
            "cannot judge: only {} of the legacy body's {} bytes were captured",
            BODY_KEPT.min(mismatch.legacy.body.len),
            mismatch.legacy.body.len
        ));
    }
    let legacy = match mismatch.legacy.observed() {
        Ok(legacy) => legacy,
        Err(e) => return Outcome::Failed(format!("cannot judge: {e}")),
    };
    let comparison = diff::compare(&legacy, answer, rules);
    let judged = diff::classify(&comparison, &NoiseBaseline::new());
    if judged.verdict != Verdict::Regression {
        return Outcome::Resolved(judged.verdict);
    }
    // What the route's baseline called noise when the mismatch was captured still is.
    let noise: HashSet<&str> = mismatch
        .differences
        .iter()
        .filter(|d| d.noise)
        .map(|d| d.pointer.as_str())
        .collect();
    let (known, differences): (Vec<Difference>, Vec<Difference>) = judged
        .regressions
        .into_iter()
        .partition(|d| noise.contains(d.pointer.as_str()));
    let all_kept = comparison.differences.len() == comparison.total;
    if differences.is_empty() && all_kept {
        return Outcome::Resolved(Verdict::Noise);
    }
    Outcome::Unresolved {
        differences,
        total: comparison.total.saturating_sub(known.len()),
    }
}

/// The lines printed for one replayed mismatch.
pub fn describe(mismatch: &Mismatch, outcome: &Outcome) -> String {
    let request = &mismatch.request;
    let origin = format!(
        "(captured {}, request {})",
        mismatch.at, mismatch.correlation
    );
    match outcome {
        Outcome::Resolved(verdict) => format!(
            "resolved     {} {}  {verdict}  {origin}\n",
            request.method, request.path
        ),
        Outcome::Unresolved { differences, total } => {
            let entries: Vec<DiffEntry> = differences
                .iter()
                .map(|d| DiffEntry {
                    pointer: d.pointer.clone(),
                    legacy: d.legacy.clone(),
                    candidate: d.candidate.clone(),
                    noise: false,
                })
                .collect();
            let mut out = format!(
                "unresolved   {} {}  regression  {origin}\n{}",
                request.method,
                request.path,
                pointer_lines(&entries, 6)
            );
            if *total > differences.len() {
                out.push_str(&format!("      … and {} more\n", total - differences.len()));
            }
            out
        }
        Outcome::Failed(why) => format!(
            "failed       {} {}  {origin}: {why}\n",
            request.method, request.path
        ),
    }
}

#[cfg(test)]
mod tests;

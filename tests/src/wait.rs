//! Waiting without sleeping for readiness: poll a condition until it holds or a deadline
//! passes (STYLE.md rule 6), and read the proxy's reload state from its admin API.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often [`eventually`] polls.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it yields `Some`, and returns that; panics naming `what` once
/// `deadline` has passed.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < give_up,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// What `GET /readyz` says about reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readyz {
    /// Generation of the live snapshot (1 at start, +1 per applied reload).
    pub generation: u64,
    /// Reloads applied since start.
    pub applied: u64,
    /// Reloads rejected since start.
    pub rejected: u64,
}

/// Reads `GET {admin_url}/readyz`; `None` if the admin API did not answer with that shape.
pub async fn readyz(client: &reqwest::Client, admin_url: &str) -> Option<Readyz> {
    let response = client
        .get(format!("{admin_url}/readyz"))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    Some(Readyz {
        generation: body["generation"].as_u64()?,
        applied: body["reloads"]["applied"].as_u64()?,
        rejected: body["reloads"]["rejected"].as_u64()?,
    })
}

/// Polls a synchronous `check` (such as a fixture's counter) until it holds; panics naming
/// `what` once `deadline` has passed.
pub async fn until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let give_up = Instant::now() + deadline;
    while !check() {
        assert!(
            Instant::now() < give_up,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

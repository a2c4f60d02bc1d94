//! The thumbnail worker: "resize on upload", the classic misc job, done ahead of time.
//!
//! It consumes `shop.image.uploaded` (derived by the proxy from the monolith's `POST /images`
//! answered 201: `image_id`, `url`, `content_type`), fetches the picture from the monolith
//! (`GET <legacy url><url>`), checks it (a PNG or JPEG that decodes, of the declared type),
//! and stores it with its [`STANDARD_SIZES`](crate::misc) thumbnails in the misc service's
//! picture store. From then on `GET /misc/thumbnail?image=<id>` answers from the store exactly
//! as the monolith does, instead of 404.
//!
//! Idempotent by event id: an event already in the store's processed list is only acked, and
//! replaying the whole history rebuilds the same store (a later upload under an id replaces an
//! earlier one, in the order the events came). The order of steps makes a crash harmless:
//! store the picture, then record the event id, then ack.
//!
//! Failures: a monolith that is down or answers 5xx is retried with backoff (the event stays
//! unacked); a picture that is gone (404) or is not a usable image is logged, recorded as
//! handled and acked — fetching it again would give the same answer.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use strangler::config::BusConfig;
use strangler::events::Event;
use strangler::events::consume::{Consumer, Delivery};
use strangler::events::sink::SinkError;

use crate::misc::PictureStore;
use crate::misc::thumbnail::{self, STANDARD_SIZES};

/// The event type consumed.
pub const EVENT_TYPE: &str = "shop.image.uploaded";
/// The default durable consumer name (its position on the bus).
pub const CONSUMER_NAME: &str = "misc-thumbnails";
/// The largest picture fetched (the monolith's upload limit).
const MAX_PICTURE_BYTES: usize = 20 * 1024 * 1024;
/// How long one fetch from the monolith may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The first pause after a failure that retrying can cure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the worker needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bus the proxy publishes to (`[bus]` of its routes.toml).
    pub bus: BusConfig,
    /// The folder relative bus paths start from (the routes.toml's folder).
    pub base_dir: PathBuf,
    /// The monolith's base URL, e.g. `http://127.0.0.1:8081`; the event's `url` is appended.
    pub legacy_url: String,
    /// The durable consumer name; [`CONSUMER_NAME`] unless several workers must keep
    /// positions of their own.
    pub consumer: String,
}

/// Why the worker stopped before its shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The bus refused the subscription (bad settings, a name in use with other filters).
    #[error("thumbnail worker: cannot consume {EVENT_TYPE}: {0}")]
    Bus(#[source] SinkError),
    /// The HTTP client could not be built.
    #[error("thumbnail worker: cannot build an HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// What became of one event.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The picture is in the store.
    Stored,
    /// Nothing to store (its picture is gone or unusable); logged.
    Skipped,
}

/// A failure handling one event.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// Retrying later can cure it (the monolith or the disk is away).
    #[error("{0}")]
    Retry(String),
}

/// Consumes `shop.image.uploaded` into `store` until `shutdown` resolves.
///
/// An unreachable bus is retried with backoff (the worker starts before the broker does, or
/// rides out an outage); a bus that refuses the subscription stops it with an error.
pub async fn run(
    settings: Settings,
    store: PictureStore,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(WorkerError::Client)?;
    let worker = Worker {
        client,
        legacy_url: settings.legacy_url.trim_end_matches('/').to_owned(),
        store,
    };
    tokio::select! {
        result = worker.consume(&settings) => result,
        () = shutdown => Ok(()),
    }
}

/// The worker's tools: an HTTP client for the monolith and the store it fills.
struct Worker {
    client: reqwest::Client,
    /// The monolith's base URL without a trailing `/`.
    legacy_url: String,
    store: PictureStore,
}

impl Worker {
    /// Subscribes (retrying while the bus is away) and handles deliveries forever.
    async fn consume(&self, settings: &Settings) -> Result<(), WorkerError> {
        let mut backoff = Backoff::default();
        let mut consumer = loop {
            match Consumer::connect(
                &settings.bus,
                &settings.base_dir,
                &settings.consumer,
                &[EVENT_TYPE],
            )
            .await
            {
                Ok(consumer) => break consumer,
                Err(SinkError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "thumbnail worker: the bus is away; retrying");
                    backoff.wait().await;
                }
                Err(e) => return Err(WorkerError::Bus(e)),
            }
        };
        tracing::info!(consumer = %settings.consumer, "thumbnail worker consuming {EVENT_TYPE}");
        let mut backoff = Backoff::default();
        loop {
            match consumer.next().await {
                Ok(delivery) => {
                    backoff = Backoff::default();
                    self.handle(delivery).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "thumbnail worker: reading the bus failed; retrying");
                    backoff.wait().await;
                }
            }
        }
    }

    /// Handles one delivery until it is done (retrying what can be cured), then acks it.
    async fn handle(&self, delivery: Delivery) {
        let id = delivery.event.id.clone();
        let mut backoff = Backoff::default();
        loop {
            match self.process(&delivery.event).await {
                Ok(outcome) => {
                    tracing::debug!(event = %id, ?outcome, "thumbnail worker handled an upload");
                    break;
                }
                Err(Failure::Retry(e)) => {
                    tracing::warn!(event = %id, error = %e, "thumbnail worker: will retry");
                    backoff.wait().await;
                }
            }
        }
        if let Err(e) = delivery.ack().await {
            // Not acked: the bus delivers it again, and the processed list makes that a no-op.
            tracing::warn!(event = %id, error = %e, "thumbnail worker: ack failed");
        }
    }

    /// Stores the event's picture unless the event was handled before; records it as handled.
    async fn process(&self, event: &Event) -> Result<Outcome, Failure> {
        if self.store.was_processed(&event.id) {
            return Ok(Outcome::Skipped);
        }
        let outcome = match Upload::from_event(event) {
            Ok(upload) => self.copy(&upload).await?,
            Err(problem) => {
                tracing::warn!(event = %event.id, %problem, "thumbnail worker: unusable event");
                Outcome::Skipped
            }
        };
        self.store
            .mark_processed(&event.id)
            .map_err(|e| Failure::Retry(e.to_string()))?;
        Ok(outcome)
    }

    /// Fetches, checks and stores one uploaded picture with its thumbnails.
    async fn copy(&self, upload: &Upload) -> Result<Outcome, Failure> {
        let Some(bytes) = self.fetch(upload).await? else {
            return Ok(Outcome::Skipped);
        };
        let store = self.store.clone();
        let id = upload.image_id.clone();
        let rendered = tokio::task::spawn_blocking(move || {
            let picture = thumbnail::decode(&bytes)?;
            let thumbnails = STANDARD_SIZES
                .iter()
                .map(|&(w, h)| Ok(((w, h), thumbnail::render(&picture, w, h)?)))
                .collect::<Result<Vec<_>, thumbnail::ThumbnailError>>()?;
            Ok::<_, thumbnail::ThumbnailError>(store.save(&id, &bytes, &thumbnails))
        })
        .await
        .map_err(|e| Failure::Retry(format!("rendering thumbnails stopped: {e}")))?;
        match rendered {
            Ok(saved) => {
                saved.map_err(|e| Failure::Retry(e.to_string()))?;
                Ok(Outcome::Stored)
            }
            Err(e) => {
                tracing::warn!(image = %upload.image_id, error = %e, "thumbnail worker: not a usable picture");
                Ok(Outcome::Skipped)
            }
        }
    }

    /// The picture's bytes from the monolith; `None` when it is gone or not what the event
    /// said (logged).
    async fn fetch(&self, upload: &Upload) -> Result<Option<Bytes>, Failure> {
        let url = format!("{}{}", self.legacy_url, upload.url);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("GET {url}: {e}")))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Retry(format!("GET {url}: {status}")));
        }
        if !status.is_success() {
            tracing::warn!(%url, %status, "thumbnail worker: the monolith no longer serves the picture");
            return Ok(None);
        }
        let served = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let declared = upload.content_type.as_deref().unwrap_or(&served);
        if !matches!(served.as_str(), "image/png" | "image/jpeg") || served != declared {
            tracing::warn!(%url, %served, %declared, "thumbnail worker: not the picture the event announced");
            return Ok(None);
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_PICTURE_BYTES as u64)
        {
            tracing::warn!(%url, "thumbnail worker: the picture is larger than any upload");
            return Ok(None);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Retry(format!("GET {url}: reading the body: {e}")))?;
        if bytes.len() > MAX_PICTURE_BYTES {
            tracing::warn!(%url, "thumbnail worker: the picture is larger than any upload");
            return Ok(None);
        }
        Ok(Some(bytes))
    }
}

/// What a `shop.image.uploaded` event announces.
#[derive(Debug, PartialEq, Eq)]
struct Upload {
    /// The monolith's image id, e.g. `img-4`.
    image_id: String,
    /// Where the monolith serves it, e.g. `/images/img-4` (a path on the monolith).
    url: String,
    /// The declared type, when the event carries it.
    content_type: Option<String>,
}

impl Upload {
    /// Reads and checks the event's `data`.
    fn from_event(event: &Event) -> Result<Upload, String> {
        let data = event.data.value();
        let text = |field: &str| data.get(field).and_then(|v| v.as_str());
        let image_id = text("image_id").ok_or("no string `image_id` in data")?;
        let plain = (1..=64).contains(&image_id.len())
            && image_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plain {
            return Err(format!("image_id {image_id:?} is not a plain id"));
        }
        let url = text("url").ok_or("no string `url` in data")?;
        if !url.starts_with('/') || url.starts_with("//") || url.contains("..") {
            return Err(format!("url {url:?} is not a path on the monolith"));
        }
        Ok(Upload {
            image_id: image_id.to_owned(),
            url: url.to_owned(),
            content_type: text("content_type").map(str::to_owned),
        })
    }
}

/// Doubling pauses between retries, capped.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests;

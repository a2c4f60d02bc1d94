//! What the pump delivers to: the [`Deliver`] seam (the real sink, or a test double) and
//! [`Outlet`], the configured sink connected on first use.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::BusConfig;
use crate::events::Event;
use crate::events::sink::{Sink, SinkError};
use crate::events::stats::Throttle;

/// Where the pump delivers: the real sink, or a test double.
pub(crate) trait Deliver: Send + 'static {
    /// Delivers `batch`; `Ok` once every event is acknowledged.
    fn deliver(&mut self, batch: &[Event]) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Housekeeping on the timer.
    fn maintain(&mut self) {}
    /// Makes what was delivered durable (on stop).
    fn flush(&mut self) {}
}

/// The configured sink, connected on first use (a broker that is down when the proxy starts
/// is just an unavailable sink).
#[derive(Debug)]
pub(crate) struct Outlet {
    bus: BusConfig,
    base_dir: PathBuf,
    sink: Option<Sink>,
    connect_warning: Throttle,
}

impl Outlet {
    pub(crate) fn new(bus: BusConfig, base_dir: PathBuf, sink: Option<Sink>) -> Self {
        Self {
            bus,
            base_dir,
            sink,
            connect_warning: Throttle::new(Duration::from_secs(60)),
        }
    }
}

impl Deliver for Outlet {
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        if self.sink.is_none() {
            match Sink::connect(&self.bus, &self.base_dir).await {
                Ok(sink) => {
                    tracing::info!(kind = ?self.bus.kind, "connected to the event bus");
                    self.sink = Some(sink);
                }
                // Settings the broker refuses: keep the events (spooled) until someone fixes
                // them, and say so loudly.
                Err(SinkError::Rejected(why)) => {
                    if self.connect_warning.allow() {
                        tracing::error!(error = %why, "the event bus refuses these [bus] settings; events are kept in the spool until fixed");
                    }
                    return Err(SinkError::Unavailable(why));
                }
                Err(e) => return Err(e),
            }
        }
        match &self.sink {
            Some(sink) => sink.publish(batch).await,
            None => Err(SinkError::Unavailable("not connected".into())),
        }
    }

    fn maintain(&mut self) {
        if let Some(sink) = &self.sink {
            sink.maintain();
        }
    }

    fn flush(&mut self) {
        if let Some(sink) = &self.sink {
            sink.flush();
        }
    }
}

//! Request bodies as the handler receives them: hyper's body behind a read timeout.
//!
//! The timer runs only while the proxy waits for the client's next body bytes, so an upstream
//! that reads slowly (back-pressure) never counts against the client. When it fires, the body
//! fails, which aborts the upstream request, and the listener answers 408.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::forward::BoxError;

/// A client's request body, failing when no bytes arrive for the body read timeout.
#[derive(Debug)]
pub struct ClientBody {
    inner: Incoming,
    timeout: Duration,
    /// Armed while waiting for bytes; reset, not reallocated, on the next wait.
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    /// Set when the timeout fired; the listener then answers 408.
    timed_out: Option<Arc<AtomicBool>>,
    done: bool,
}

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body bytes for {0:?}")]
pub struct BodyTimeout(pub Duration);

impl ClientBody {
    /// Wraps `inner`; returns the flag that says whether the timeout fired (`None` for an
    /// empty body, which cannot stall).
    pub fn new(inner: Incoming, timeout: Duration) -> (Self, Option<Arc<AtomicBool>>) {
        let timed_out = (!inner.is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
        let body = Self {
            inner,
            timeout,
            timer: None,
            waiting: false,
            timed_out: timed_out.clone(),
            done: false,
        };
        (body, timed_out)
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                let this = &mut *self;
                let deadline = Instant::now() + this.timeout;
                let timer = match (&mut this.timer, this.waiting) {
                    (Some(timer), true) => timer,
                    (Some(timer), false) => {
                        timer.as_mut().reset(deadline);
                        timer
                    }
                    (None, _) => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                this.waiting = true;
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.done = true;
                if let Some(flag) = &this.timed_out {
                    flag.store(true, Ordering::Relaxed);
                }
                Poll::Ready(Some(Err(BodyTimeout(this.timeout).into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

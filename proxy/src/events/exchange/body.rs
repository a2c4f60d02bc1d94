//! The bodies a probe wraps: each counts its bytes and keeps a capped copy (only when asked),
//! passing every frame through untouched, and reports once when it ends or is dropped.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use super::probe::{Answered, RequestSeen, ResponseSeen};
use crate::events::Publisher;
use crate::forward::{BoxError, ProxyBody};

/// Byte count and capped copy of a body as it streams.
#[derive(Debug)]
pub(super) struct Copying {
    bytes: u64,
    copy: Option<BytesMut>,
    cap: usize,
    truncated: bool,
}

impl Copying {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            bytes: 0,
            copy: (cap > 0).then(BytesMut::new),
            cap,
            truncated: false,
        }
    }

    fn saw(&mut self, frame: &Frame<Bytes>) {
        let Some(data) = frame.data_ref() else { return };
        self.bytes += data.len() as u64;
        if let Some(copy) = self.copy.as_mut() {
            let room = self.cap.saturating_sub(copy.len());
            if data.len() > room {
                self.truncated = true;
            }
            copy.extend_from_slice(&data[..data.len().min(room)]);
        }
    }

    fn take(&mut self) -> (u64, Option<Bytes>, bool) {
        (
            self.bytes,
            self.copy.take().map(BytesMut::freeze),
            self.truncated,
        )
    }
}

/// The request body streaming upstream, counted.
pub(super) struct Counted {
    inner: ProxyBody,
    seen: Copying,
    slot: Arc<OnceLock<RequestSeen>>,
}

impl Counted {
    pub(super) fn new(inner: ProxyBody, seen: Copying, slot: Arc<OnceLock<RequestSeen>>) -> Self {
        Self { inner, seen, slot }
    }

    fn finish(&mut self, complete: bool) {
        if self.slot.get().is_some() {
            return;
        }
        let (bytes, copy, truncated) = self.seen.take();
        let _ = self.slot.set(RequestSeen {
            bytes,
            copy,
            truncated,
            complete,
        });
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.seen.saw(frame);
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Ready(None) => this.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}

/// The response body going to the client; publishes the exchange's events at its end.
pub(super) struct Watched {
    inner: ProxyBody,
    seen: Copying,
    done: Option<Box<Answered>>,
    publisher: Publisher,
}

impl Watched {
    pub(super) fn new(
        inner: ProxyBody,
        seen: Copying,
        done: Box<Answered>,
        publisher: Publisher,
    ) -> Self {
        Self {
            inner,
            seen,
            done: Some(done),
            publisher,
        }
    }

    fn finish(&mut self, complete: bool) {
        let Some(answered) = self.done.take() else {
            return;
        };
        let (bytes, copy, truncated) = self.seen.take();
        let response = ResponseSeen {
            bytes,
            copy,
            truncated,
            complete,
        };
        self.publisher.publish_exchange(answered.finish(response));
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            // The last frame is on its way: publish once the body is dropped or polled again.
            Poll::Ready(Some(Ok(frame))) => this.seen.saw(frame),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Ready(None) => this.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}

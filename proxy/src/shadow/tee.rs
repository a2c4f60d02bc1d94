//! Copying a body while it streams to its real destination.
//!
//! A [`Tee`] passes every frame through untouched and keeps a copy up to a cap; when the body
//! ends (or is dropped) it hands the copy to whoever waits on the [`Captured`] receiver. The
//! stream itself never waits for the copy's reader: the copy is a side effect, never a
//! dependency of the primary exchange.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use crate::forward::{BoxError, ProxyBody};

/// What a tee saw of its body.
#[derive(Debug)]
pub enum Capture {
    /// The whole body, and when its last byte passed.
    Complete {
        /// The bytes.
        body: Bytes,
        /// Time from the tee's creation to the end of the body.
        elapsed: Duration,
    },
    /// The body outgrew the cap; no copy was kept.
    TooLarge,
    /// The body ended with an error or was dropped before its end (client went away).
    Incomplete,
}

/// Receives a tee's capture.
pub type Captured = oneshot::Receiver<Capture>;

/// A body that keeps a copy of what passes through it.
pub struct Tee {
    inner: ProxyBody,
    copy: Option<BytesMut>,
    cap: usize,
    started: Instant,
    done: Option<oneshot::Sender<Capture>>,
}

impl Tee {
    /// Wraps `inner`, keeping at most `cap` bytes.
    pub fn new(inner: ProxyBody, cap: usize) -> (Self, Captured) {
        let (tx, rx) = oneshot::channel();
        let tee = Self {
            inner,
            copy: Some(BytesMut::new()),
            cap,
            started: Instant::now(),
            done: Some(tx),
        };
        (tee, rx)
    }

    fn finish(&mut self, capture: Capture) {
        if let Some(done) = self.done.take() {
            // The reader may be gone (shadow skipped); the primary does not care.
            let _ = done.send(capture);
        }
    }

    fn complete(&mut self) {
        let capture = match self.copy.take() {
            Some(copy) => Capture::Complete {
                body: copy.freeze(),
                elapsed: self.started.elapsed(),
            },
            None => Capture::TooLarge,
        };
        self.finish(capture);
    }
}

impl Body for Tee {
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
                if let (Some(data), Some(copy)) = (frame.data_ref(), this.copy.as_mut()) {
                    if copy.len() + data.len() > this.cap {
                        this.copy = None;
                    } else {
                        copy.extend_from_slice(data);
                    }
                }
                if this.inner.is_end_stream() {
                    this.complete();
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(Capture::Incomplete),
            Poll::Ready(None) => this.complete(),
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

impl Drop for Tee {
    fn drop(&mut self) {
        if self.done.is_some() {
            if self.inner.is_end_stream() {
                self.complete();
            } else {
                self.finish(Capture::Incomplete);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    fn body(parts: Vec<&'static [u8]>) -> ProxyBody {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .into_iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    #[tokio::test]
    async fn passes_through_and_captures() {
        let (tee, rx) = Tee::new(body(vec![b"ab", b"cd"]), 10);
        let out = tee.collect().await.unwrap().to_bytes();
        assert_eq!(out, Bytes::from_static(b"abcd"));
        assert!(
            matches!(rx.await.unwrap(), Capture::Complete { body, .. } if body == Bytes::from_static(b"abcd"))
        );
    }

    #[tokio::test]
    async fn over_cap_is_too_large_but_still_streams() {
        let (tee, rx) = Tee::new(body(vec![b"abc", b"def"]), 4);
        let out = tee.collect().await.unwrap().to_bytes();
        assert_eq!(out.len(), 6);
        assert!(matches!(rx.await.unwrap(), Capture::TooLarge));
    }

    #[tokio::test]
    async fn dropped_early_is_incomplete() {
        let (mut tee, rx) = Tee::new(body(vec![b"abc", b"def"]), 100);
        let _first = tee.frame().await;
        drop(tee);
        assert!(matches!(rx.await.unwrap(), Capture::Incomplete));
    }

    #[tokio::test]
    async fn empty_body_completes() {
        let empty = Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync();
        let (tee, rx) = Tee::new(empty, 100);
        drop(tee);
        assert!(matches!(rx.await.unwrap(), Capture::Complete { body, .. } if body.is_empty()));
    }
}

//! Idle detection for client connections: a connection is idle when no request is in flight
//! and no byte has moved for the configured time. Costs one relaxed atomic store per read or
//! write.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Shared view of a connection's activity.
#[derive(Debug, Clone)]
pub struct Activity(Arc<ActivityState>);

#[derive(Debug)]
struct ActivityState {
    start: Instant,
    /// Milliseconds since `start` of the last byte moved.
    last_io_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self(Arc::new(ActivityState {
            start: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }))
    }

    fn touch(&self) {
        let ms = self.0.start.elapsed().as_millis() as u64;
        self.0.last_io_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has been idle; zero while a request is in flight.
    pub fn idle_for(&self) -> Duration {
        if self.0.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.0.last_io_ms.load(Ordering::Relaxed));
        self.0.start.elapsed().saturating_sub(last)
    }

    /// Marks a request in flight until the guard drops.
    pub fn request_started(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An IO stream that records when bytes move.
#[derive(Debug)]
pub struct IdleIo<S> {
    inner: S,
    activity: Activity,
}

impl<S> IdleIo<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            activity: Activity::new(),
        }
    }

    /// The shared activity record.
    pub fn activity(&self) -> Activity {
        self.activity.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_only_without_requests_in_flight() {
        let a = Activity::new();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(a.idle_for() >= Duration::from_secs(5));
        let guard = a.request_started();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(a.idle_for(), Duration::ZERO);
        drop(guard);
        assert!(a.idle_for() < Duration::from_secs(1));
    }
}

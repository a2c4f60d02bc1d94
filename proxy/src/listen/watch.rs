//! What a client connection is doing: bytes moving, request heads arriving, requests in
//! flight, requests the client cancelled before their answer. The listener's timers read it
//! to tell a slow head (header read timeout) from a quiet keep-alive connection (idle
//! timeout), and its rapid-reset check reads the cancellations; the request guard reads the
//! refusals the byte scanner recorded.
//!
//! Costs per read: one clock read, one relaxed store, and the scanner's look at the bytes.

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::scan::Scanner;

/// No request head is being read.
const NO_HEAD: u64 = u64::MAX;

/// How the connection's bytes are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.x, request heads followed by the scanner.
    Http1,
    /// HTTP/2: idle means no stream for a while, whatever frames (pings) move.
    Http2,
    /// Not followed (a tunnel after an upgrade, or bytes hyper refuses): idle means no bytes.
    Untracked,
}

impl Mode {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Http1,
            1 => Self::Http2,
            _ => Self::Untracked,
        }
    }
}

/// Shared view of a connection's activity.
#[derive(Debug, Clone)]
pub struct Activity(Arc<ActivityState>);

#[derive(Debug)]
struct ActivityState {
    start: Instant,
    /// Milliseconds since `start` of the last byte moved.
    last_io_ms: AtomicU64,
    /// Milliseconds since `start` of the last request start or end.
    last_request_ms: AtomicU64,
    /// Milliseconds since `start` of the first byte of the head being read, or `NO_HEAD`.
    head_started_ms: AtomicU64,
    in_flight: AtomicUsize,
    mode: AtomicU8,
    /// Request heads completed, as the scanner counts them.
    heads: AtomicU64,
    /// Requests handed to the service so far (in head order on HTTP/1.x).
    requests: AtomicU64,
    /// Index of the first head the scanner refused (`u64::MAX`: none).
    refused_from: AtomicU64,
    /// Why the scanner refused it.
    refusal: OnceLock<&'static str>,
    /// Requests dropped before they were answered: the client cancelled them (HTTP/2
    /// RST_STREAM, or the connection closed under them).
    cancelled: AtomicU64,
    /// Woken at each cancellation, for the listener's rapid-reset check.
    on_cancel: Notify,
}

impl Activity {
    /// A fresh record for a connection opened now.
    pub fn new() -> Self {
        Self(Arc::new(ActivityState {
            start: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            last_request_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(NO_HEAD),
            in_flight: AtomicUsize::new(0),
            mode: AtomicU8::new(Mode::Http1 as u8),
            heads: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            refused_from: AtomicU64::new(u64::MAX),
            refusal: OnceLock::new(),
            cancelled: AtomicU64::new(0),
            on_cancel: Notify::new(),
        }))
    }

    fn now_ms(&self) -> u64 {
        self.0.start.elapsed().as_millis() as u64
    }

    fn since(&self, ms: u64) -> Duration {
        self.0
            .start
            .elapsed()
            .saturating_sub(Duration::from_millis(ms))
    }

    fn touch(&self) {
        self.0.last_io_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// The first byte of a request head arrived.
    pub fn head_started(&self) {
        self.0
            .head_started_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// The request head is complete.
    pub fn head_done(&self) {
        self.0.head_started_ms.store(NO_HEAD, Ordering::Relaxed);
        self.0.heads.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a request head is partly read.
    pub fn head_in_progress(&self) -> bool {
        self.0.head_started_ms.load(Ordering::Relaxed) != NO_HEAD
    }

    /// How long the head being read has taken so far; `None` when no head is being read.
    pub fn head_age(&self) -> Option<Duration> {
        match self.0.head_started_ms.load(Ordering::Relaxed) {
            NO_HEAD => None,
            ms => Some(self.since(ms)),
        }
    }

    /// Stops following heads: the bytes are HTTP/2, a tunnel, or refused.
    pub fn set_mode(&self, mode: Mode) {
        self.0.mode.store(mode as u8, Ordering::Relaxed);
        self.0.head_started_ms.store(NO_HEAD, Ordering::Relaxed);
    }

    /// How the connection's bytes are followed.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.0.mode.load(Ordering::Relaxed))
    }

    /// Records that the head being read (or, from within a body, the next one) and every
    /// later request on this connection must be refused, and why. Requests before it, whose
    /// heads were sound, are answered normally.
    pub fn refuse(&self, why: &'static str) {
        if self.0.refusal.set(why).is_ok() {
            let from = self.0.heads.load(Ordering::Relaxed);
            self.0.refused_from.store(from, Ordering::Relaxed);
        }
        self.set_mode(Mode::Untracked);
    }

    /// Why request number `seq` (from [`InFlight::seq`]) must be refused, if it must.
    pub fn refusal(&self, seq: u64) -> Option<&'static str> {
        if seq >= self.0.refused_from.load(Ordering::Relaxed) {
            self.0.refusal.get().copied()
        } else {
            None
        }
    }

    /// How long the connection has been idle: zero while a request is in flight or its head
    /// is being read; for HTTP/2, the time since the last request started or ended.
    pub fn idle_for(&self) -> Duration {
        if self.0.in_flight.load(Ordering::Relaxed) > 0 || self.head_in_progress() {
            return Duration::ZERO;
        }
        match self.mode() {
            Mode::Http2 => self.since(self.0.last_request_ms.load(Ordering::Relaxed)),
            Mode::Http1 | Mode::Untracked => self.since(self.0.last_io_ms.load(Ordering::Relaxed)),
        }
    }

    /// Marks a request in flight until the guard drops; a guard dropped before
    /// [`InFlight::answered`] counts as cancelled by the client.
    pub fn request_started(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        let seq = self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0
            .last_request_ms
            .store(self.now_ms(), Ordering::Relaxed);
        InFlight {
            activity: self.clone(),
            seq,
            answered: false,
        }
    }

    /// Waits for the next request the client cancels before its answer.
    pub async fn cancellation(&self) {
        self.0.on_cancel.notified().await;
    }

    /// Whether the client has cancelled more than `limit` requests before their answer, and
    /// more than half of all its requests: HTTP/2 rapid reset (CVE-2023-44487) paced so that
    /// h2's own limit, which counts only streams reset before the server accepted them, never
    /// sees it. The half keeps a long-lived connection that cancels now and then open.
    pub fn cancels_too_many(&self, limit: u64) -> bool {
        let cancelled = self.0.cancelled.load(Ordering::Relaxed);
        let requests = self.0.requests.load(Ordering::Relaxed);
        cancelled > limit && cancelled.saturating_mul(2) > requests
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct InFlight {
    activity: Activity,
    seq: u64,
    /// Set once the handler produced the response head; unset at drop means cancelled.
    answered: bool,
}

impl InFlight {
    /// The request's number on its connection, from 0.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The request has its answer (whatever its body does later).
    pub fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let state = &self.activity.0;
        let now = self.activity.now_ms();
        state.last_io_ms.store(now, Ordering::Relaxed);
        state.last_request_ms.store(now, Ordering::Relaxed);
        state.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.answered {
            state.cancelled.fetch_add(1, Ordering::Relaxed);
            state.on_cancel.notify_one();
        }
    }
}

/// An IO stream that records when bytes move and follows the request heads read through it.
#[derive(Debug)]
pub struct WatchedIo<S> {
    inner: S,
    activity: Activity,
    scanner: Scanner,
}

impl<S> WatchedIo<S> {
    /// Wraps `inner`; `scanner` follows what the client sends.
    pub fn new(inner: S, scanner: Scanner) -> Self {
        Self {
            inner,
            activity: Activity::new(),
            scanner,
        }
    }

    /// The shared activity record.
    pub fn activity(&self) -> Activity {
        self.activity.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.activity.touch();
            if let Err(at) = this.scanner.feed(read, &this.activity) {
                // See `Scanner::feed`: hyper's chunk decoder refuses a bare LF here, so the
                // body fails and the client gets 400 before anything small is forwarded.
                buf.filled_mut()[before + at] = b'\n';
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedIo<S> {
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

    #[tokio::test(start_paused = true)]
    async fn a_head_being_read_is_not_idle_but_has_an_age() {
        let a = Activity::new();
        a.head_started();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(a.idle_for(), Duration::ZERO);
        assert!(a.head_age() >= Some(Duration::from_secs(3)));
        a.head_done();
        assert_eq!(a.head_age(), None);
    }

    #[test]
    fn cancelled_requests_count_only_unanswered_ones_and_past_half() {
        let a = Activity::new();
        for _ in 0..10 {
            a.request_started().answered();
        }
        for _ in 0..10 {
            drop(a.request_started());
        }
        // 10 of 20 cancelled: over a limit of 5, but not more than half.
        assert!(!a.cancels_too_many(5));
        drop(a.request_started());
        assert!(a.cancels_too_many(5));
        assert!(!a.cancels_too_many(11));
    }

    #[tokio::test]
    async fn a_cancellation_wakes_the_waiter_even_if_it_came_first() {
        let a = Activity::new();
        a.request_started().answered();
        drop(a.request_started());
        tokio::time::timeout(Duration::from_secs(5), a.cancellation())
            .await
            .expect("the earlier cancellation is not lost");
    }

    #[tokio::test(start_paused = true)]
    async fn http2_idle_ignores_bytes_moving() {
        let a = Activity::new();
        a.set_mode(Mode::Http2);
        tokio::time::advance(Duration::from_secs(5)).await;
        a.touch();
        assert!(a.idle_for() >= Duration::from_secs(5));
    }
}

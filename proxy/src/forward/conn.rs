//! One HTTP/1.1 exchange on an upstream connection, run by the task that asked for it.
//!
//! [`Exchange`] writes the request and reads the response head; the response body
//! ([`PooledBody`]) reads the rest from the same socket when the client's side polls it, and
//! hands the connection back to its pool once the answer has been read to the end. No task
//! sits between the client's connection and the upstream's: a small answer is written,
//! read and relayed in one turn of the client's task.
//!
//! A request body still being sent when the answer comes (an upstream may answer early) goes
//! on being sent while the response body is read; a connection is reused only when both
//! ended cleanly and nothing unasked-for followed the answer.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use super::body::{BoxError, ProxyBody};
use super::h1::{
    self, BodyShape, Chunk, ChunkedDecoder, Malformed, RequestFraming, ResponseFraming,
};
use super::pool::Shared;

/// Bytes read from an upstream at a time at least.
const READ_CHUNK: usize = 8 * 1024;
/// Bytes read at a time at most, for a body whose length is known to be larger.
const READ_CHUNK_MAX: usize = 64 * 1024;

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Reading from or writing to the connection failed.
    #[error("upstream connection failed")]
    Io(#[source] io::Error),
    /// The upstream closed the connection before its response head was complete.
    #[error("upstream closed the connection before answering")]
    ClosedBeforeAnswer,
    /// The upstream closed the connection before the body its head announced had arrived.
    #[error("upstream closed the connection before the response body ended")]
    ClosedMidBody,
    /// The upstream's answer is not valid HTTP/1.x.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// The request body failed (the client's upload broke off, or outgrew its limit).
    #[error("the request body could not be sent")]
    RequestBody(#[source] BoxError),
    /// The request body did not match the Content-Length it was sent with.
    #[error("the request body did not match its Content-Length")]
    RequestBodyLength,
}

/// An open connection to an upstream, with what was read from it but not yet used.
#[derive(Debug)]
pub struct Connection {
    io: TcpStream,
    read: BytesMut,
}

impl Connection {
    /// A connection over `io`.
    pub fn new(io: TcpStream) -> Self {
        Self {
            io,
            read: BytesMut::new(),
        }
    }

    /// Whether an idle connection can carry a request: still open, and the upstream sent
    /// nothing unasked-for. A system call only when the socket was reported readable.
    pub fn is_usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads more of a body whose end is still to come: the upstream closing now cut it short.
    fn poll_fill_body(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<Result<(), UpstreamError>> {
        Poll::Ready(match ready!(self.poll_fill(cx, want)) {
            Ok(0) => Err(UpstreamError::ClosedMidBody),
            Ok(_) => Ok(()),
            Err(e) => Err(UpstreamError::Io(e)),
        })
    }

    /// Reads more bytes into the buffer (room for `want` made, within bounds); `Ok(0)` at the
    /// end of the stream. Through tokio's `poll_read`, which takes a short read as the socket
    /// drained and clears its readiness: [`is_usable`](Self::is_usable) then needs no system
    /// call for a connection whose answer was read whole.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        if self.read.capacity() - self.read.len() < READ_CHUNK {
            self.read.reserve(want.clamp(READ_CHUNK, READ_CHUNK_MAX));
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read)
    }
}

/// The request on its way out: head bytes, the data frame being written, the rest of the body.
struct Upload {
    /// Bytes to write before `data`: the head, then chunk-size lines and chunk ends.
    pending: Vec<u8>,
    /// How much of `pending` has been written.
    written: usize,
    /// A body frame's data, written after `pending` without copying.
    data: Bytes,
    /// The body still to read; `None` once its last frame was taken.
    body: Option<ProxyBody>,
    framing: RequestFraming,
    /// Body bytes taken so far (checked against a Content-Length).
    sent: u64,
    /// A chunk's data was queued and its closing CRLF not yet.
    chunk_open: bool,
    /// The request's `Trailer` values, for a chunked body that declares some.
    declared_trailers: Vec<HeaderValue>,
}

impl Upload {
    fn new(request: Request<ProxyBody>) -> (Self, Method) {
        let (mut parts, body) = request.into_parts();
        let hint = body.size_hint();
        let shape = BodyShape {
            empty: body.is_end_stream(),
            exact: hint.exact(),
        };
        let mut pending = Vec::new();
        let framing = h1::encode_request(&mut parts, shape, &mut pending);
        let declared_trailers = match framing {
            RequestFraming::Chunked => parts
                .headers
                .get_all(header::TRAILER)
                .iter()
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        let upload = Self {
            pending,
            written: 0,
            data: Bytes::new(),
            body: (!shape.empty).then_some(body),
            framing,
            sent: 0,
            chunk_open: false,
            declared_trailers,
        };
        (upload, parts.method)
    }

    /// Writes what can be written now; `Ready(Ok)` once the whole request is out. The body's
    /// next frame is taken before writing what is queued, when it is there already: a head
    /// and a body read whole go out in one write.
    fn poll_send(
        &mut self,
        io: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), UpstreamError>> {
        loop {
            if self.data.is_empty() {
                if let Some(body) = self.body.as_mut() {
                    match Pin::new(body).poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                            Ok(data) => self.take_data(data)?,
                            Err(frame) => {
                                let trailers = frame.into_trailers().unwrap_or_default();
                                self.finish(Some(&trailers))?;
                            }
                        },
                        Poll::Ready(Some(Err(e))) => {
                            self.body = None;
                            return Poll::Ready(Err(UpstreamError::RequestBody(e)));
                        }
                        Poll::Ready(None) => self.finish(None)?,
                        Poll::Pending if self.written == self.pending.len() => {
                            return Poll::Pending;
                        }
                        Poll::Pending => {}
                    }
                }
            }
            if self.written == self.pending.len() && self.data.is_empty() {
                self.pending.clear();
                self.written = 0;
                if self.body.is_none() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let slices = [
                IoSlice::new(&self.pending[self.written..]),
                IoSlice::new(&self.data),
            ];
            let n = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))
                .map_err(UpstreamError::Io)?;
            if n == 0 {
                return Poll::Ready(Err(UpstreamError::Io(io::ErrorKind::WriteZero.into())));
            }
            let head = n.min(self.pending.len() - self.written);
            self.written += head;
            self.data.advance(n - head);
        }
    }

    /// Queues a data frame, framed.
    fn take_data(&mut self, data: Bytes) -> Result<(), UpstreamError> {
        if data.is_empty() {
            return Ok(());
        }
        self.sent += data.len() as u64;
        match self.framing {
            RequestFraming::Length(length) if self.sent > length => {
                self.body = None;
                return Err(UpstreamError::RequestBodyLength);
            }
            RequestFraming::Length(_) => {}
            RequestFraming::Chunked => {
                self.close_chunk();
                h1::encode_chunk_size(data.len(), &mut self.pending);
                self.chunk_open = true;
            }
        }
        self.data = data;
        Ok(())
    }

    /// Queues the CRLF ending the chunk whose data was written last (it goes out before what
    /// follows, as `pending` is written before `data`).
    fn close_chunk(&mut self) {
        if std::mem::take(&mut self.chunk_open) {
            self.pending.extend_from_slice(b"\r\n");
        }
    }

    /// The body ended (with `trailers`, if any): queues the end of a chunked body.
    fn finish(&mut self, trailers: Option<&HeaderMap>) -> Result<(), UpstreamError> {
        self.body = None;
        match self.framing {
            RequestFraming::Length(length) if self.sent != length => {
                Err(UpstreamError::RequestBodyLength)
            }
            RequestFraming::Length(_) => Ok(()),
            RequestFraming::Chunked => {
                self.close_chunk();
                let none = HeaderMap::new();
                h1::encode_last_chunk(
                    &self.declared_trailers,
                    trailers.unwrap_or(&none),
                    &mut self.pending,
                );
                Ok(())
            }
        }
    }
}

/// Sends a request on a connection and waits for the response head.
pub struct Exchange {
    /// Taken out while polled; kept only while the head is still to come.
    conn: Option<Connection>,
    /// `None` once the whole request is written.
    upload: Option<Upload>,
    method: Method,
    /// Writing the request failed; the upstream may still have answered.
    send_failed: Option<UpstreamError>,
    pool: Weak<Shared>,
}

impl Exchange {
    /// Starts sending `request` (its URI in origin form) on `conn`, which goes back to `pool`
    /// once the answer has been read.
    pub fn new(conn: Connection, request: Request<ProxyBody>, pool: Weak<Shared>) -> Self {
        let (upload, method) = Upload::new(request);
        Self {
            conn: Some(conn),
            upload: Some(upload),
            method,
            send_failed: None,
            pool,
        }
    }

    /// The response, its body reading the rest of the answer from the connection.
    fn respond(&mut self, conn: Connection, head: h1::ResponseHead) -> Response<PooledBody> {
        let reading = match head.framing {
            ResponseFraming::Empty | ResponseFraming::Length(0) => Reading::Done,
            ResponseFraming::Length(length) => Reading::Length(length),
            ResponseFraming::Chunked => Reading::Chunked(ChunkedDecoder::default()),
            ResponseFraming::UntilClose => Reading::UntilClose,
            ResponseFraming::Upgrade => Reading::Upgrade,
        };
        let mut body = PooledBody {
            conn: Some(conn),
            upload: self.upload.take(),
            reading,
            reusable: head.keep_alive && self.send_failed.is_none(),
            failed: None,
            pool: std::mem::take(&mut self.pool),
        };
        if matches!(body.reading, Reading::Done) {
            body.finish();
        }
        Response::from_parts(head.parts, body)
    }
}

impl Exchange {
    /// Sends what can be sent and reads until the response head is complete.
    fn poll_head(
        &mut self,
        conn: &mut Connection,
        cx: &mut Context<'_>,
    ) -> Poll<Result<h1::ResponseHead, UpstreamError>> {
        if let Some(upload) = self.upload.as_mut() {
            match upload.poll_send(&mut conn.io, cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(())) => self.upload = None,
                Poll::Ready(Err(e @ UpstreamError::Io(_))) => {
                    // The upstream may have answered and closed without reading it all.
                    self.upload = None;
                    self.send_failed = Some(e);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
        loop {
            if let Some(head) = h1::parse_response(&mut conn.read, &self.method)? {
                return Poll::Ready(Ok(head));
            }
            match ready!(conn.poll_fill(cx, READ_CHUNK)) {
                Ok(n) if n > 0 => {}
                filled => {
                    // A failed write is the better explanation of a missing answer.
                    return Poll::Ready(Err(match (filled, self.send_failed.take()) {
                        (_, Some(send_failed)) => send_failed,
                        (Err(e), None) => UpstreamError::Io(e),
                        (Ok(_), None) => UpstreamError::ClosedBeforeAnswer,
                    }));
                }
            }
        }
    }
}

impl Future for Exchange {
    type Output = Result<Response<PooledBody>, UpstreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Out of `self` while polled: dropped (closed) on an error, handed to the body with
        // the head, put back when there is nothing to do yet.
        let Some(mut conn) = this.conn.take() else {
            return Poll::Ready(Err(UpstreamError::ClosedBeforeAnswer));
        };
        match this.poll_head(&mut conn, cx) {
            Poll::Pending => {
                this.conn = Some(conn);
                Poll::Pending
            }
            Poll::Ready(Ok(head)) => Poll::Ready(Ok(this.respond(conn, head))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

/// How much of the response body is left to read.
#[derive(Debug)]
enum Reading {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    /// The connection switched protocols; [`PooledBody::take_upgrade`] hands it out.
    Upgrade,
    Done,
}

/// An upstream's response body, read from its connection as it is polled. Read to its end,
/// it returns the connection to the pool; dropped before, it closes the connection.
pub struct PooledBody {
    conn: Option<Connection>,
    /// What is left of the request body, when the upstream answered before it was sent.
    upload: Option<Upload>,
    reading: Reading,
    /// The answer allows another request on the connection, and the request went out whole.
    reusable: bool,
    /// The connection broke off; reported at the next poll (see [`PooledBody::fail`]).
    failed: Option<UpstreamError>,
    pool: Weak<Shared>,
}

/// A connection that switched protocols (WebSocket and the like), with the bytes the
/// upstream sent after its 101 head.
#[derive(Debug)]
pub struct Upgraded {
    /// The connection.
    pub io: TcpStream,
    /// What the upstream sent after the response head, already read.
    pub read_ahead: Bytes,
}

impl PooledBody {
    /// The connection, when the upstream switched protocols; it is no longer HTTP.
    pub fn take_upgrade(&mut self) -> Option<Upgraded> {
        if !matches!(self.reading, Reading::Upgrade) {
            return None;
        }
        self.reading = Reading::Done;
        self.conn.take().map(|conn| Upgraded {
            io: conn.io,
            read_ahead: conn.read.freeze(),
        })
    }

    /// The answer has been read: the connection goes back to the pool when it can carry
    /// another request, else it is closed.
    fn finish(&mut self) {
        self.reading = Reading::Done;
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.reusable && self.upload.is_none() && conn.read.is_empty() {
            if let Some(pool) = self.pool.upgrade() {
                pool.give_back(conn);
            }
        }
        self.upload = None;
    }

    /// The connection failed: it is closed, and the error is reported at the next poll. The
    /// client's side gets to send what it holds first (it writes the response head with the
    /// first data, and an error at once would throw both away): the client sees the answer
    /// start, then break off.
    fn fail(
        &mut self,
        error: UpstreamError,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        self.conn = None;
        self.upload = None;
        self.failed = Some(error);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = UpstreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        let this = self.get_mut();
        if let Some(error) = this.failed.take() {
            this.reading = Reading::Done;
            return Poll::Ready(Some(Err(error)));
        }
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(upload) = this.upload.as_mut() {
            match upload.poll_send(&mut conn.io, cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(())) => this.upload = None,
                Poll::Ready(Err(_)) => {
                    this.upload = None;
                    this.reusable = false;
                }
            }
        }
        let (frame, ended) = match &mut this.reading {
            Reading::Length(left) => {
                if conn.read.is_empty() {
                    let want = usize::try_from(*left).unwrap_or(usize::MAX);
                    if let Err(e) = ready!(conn.poll_fill_body(cx, want)) {
                        return this.fail(e, cx);
                    }
                }
                let take = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(conn.read.len());
                *left -= take as u64;
                (Frame::data(conn.read.split_to(take).freeze()), *left == 0)
            }
            Reading::Chunked(decoder) => loop {
                match decoder.decode(&mut conn.read) {
                    Ok(Chunk::Data(data)) => break (Frame::data(data), false),
                    Ok(Chunk::End(trailers)) if trailers.is_empty() => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(Chunk::End(trailers)) => break (Frame::trailers(trailers), true),
                    Ok(Chunk::More) => {
                        if let Err(e) = ready!(conn.poll_fill_body(cx, READ_CHUNK)) {
                            return this.fail(e, cx);
                        }
                    }
                    Err(e) => return this.fail(e.into(), cx),
                }
            },
            Reading::UntilClose => {
                if conn.read.is_empty() {
                    match ready!(conn.poll_fill(cx, READ_CHUNK)) {
                        Ok(0) => {
                            this.reusable = false;
                            this.finish();
                            return Poll::Ready(None);
                        }
                        Ok(_) => {}
                        Err(e) => return this.fail(UpstreamError::Io(e), cx),
                    }
                }
                (Frame::data(conn.read.split().freeze()), false)
            }
            Reading::Upgrade | Reading::Done => return Poll::Ready(None),
        };
        if ended {
            this.finish();
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.reading, Reading::Done | Reading::Upgrade)
    }

    fn size_hint(&self) -> SizeHint {
        match self.reading {
            Reading::Length(left) => SizeHint::with_exact(left),
            Reading::Done | Reading::Upgrade => SizeHint::with_exact(0),
            Reading::Chunked(_) | Reading::UntilClose => SizeHint::default(),
        }
    }
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody")
            .field("reading", &self.reading)
            .field("reusable", &self.reusable)
            .finish_non_exhaustive()
    }
}

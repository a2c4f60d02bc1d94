//! Request bodies on their way upstream.
//!
//! A body up to [`BUFFER_LIMIT`] is read whole before any upstream sees the request, so its
//! framing is proven valid and it can be re-sent on a connect retry. A larger body streams,
//! behind a size limit that fails the exchange with 413 rather than forwarding the excess.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};

/// The error type of every body the proxy relays.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body in flight, boxed once so every source (buffered, streamed, generated) fits.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Bodies up to this size are read whole before forwarding (DESIGN.md, "Forwarding").
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// A body read whole: re-sendable on retry.
#[derive(Debug, Clone, Default)]
pub struct Buffered {
    data: Bytes,
    trailers: Option<HeaderMap>,
}

impl Buffered {
    /// A body of these bytes.
    pub fn from_bytes(data: Bytes) -> Self {
        Self {
            data,
            trailers: None,
        }
    }

    /// The body's bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// A body that yields this buffer.
    pub fn to_body(&self) -> ProxyBody {
        if self.trailers.is_none() {
            return Full::new(self.data.clone())
                .map_err(|never| match never {})
                .boxed_unsync();
        }
        ReplayBody {
            data: Some(self.data.clone()),
            trailers: self.trailers.clone(),
        }
        .boxed_unsync()
    }
}

/// What reading the start of a request body gave.
pub enum Prepared {
    /// The whole body, validated.
    Whole(Buffered),
    /// The first part was read; the rest still streams (limited).
    Streaming(ProxyBody),
}

/// Why a request body could not be relayed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body exceeds the route's limit.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client sent broken framing (e.g. a bad chunk size) or went away.
    #[error("request body could not be read: {0}")]
    Read(BoxError),
}

/// Reads up to [`BUFFER_LIMIT`] of `body`; a body that ends within it is returned whole,
/// a longer one as a stream (the part read first, then the rest) limited to `limit` bytes.
pub async fn prepare<B>(body: B, limit: u64) -> Result<Prepared, BodyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = body;
    let mut head = BytesMut::new();
    let buffer_limit = (BUFFER_LIMIT as u64).min(limit.saturating_add(1)) as usize;
    loop {
        if body.is_end_stream() {
            return Ok(Prepared::Whole(Buffered {
                data: head.freeze(),
                trailers: None,
            }));
        }
        match body.frame().await {
            None => {
                return Ok(Prepared::Whole(Buffered {
                    data: head.freeze(),
                    trailers: None,
                }));
            }
            Some(Err(e)) => return Err(classify(e.into(), limit)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    head.extend_from_slice(&data);
                    if head.len() as u64 > limit {
                        return Err(BodyError::TooLarge { limit });
                    }
                    if head.len() >= buffer_limit {
                        break;
                    }
                }
                Err(frame) => {
                    let trailers = frame.into_trailers().ok();
                    return Ok(Prepared::Whole(Buffered {
                        data: head.freeze(),
                        trailers,
                    }));
                }
            },
        }
    }
    let already = head.len() as u64;
    let rest = Limited::new(body, (limit - already) as usize);
    let chained = ReplayBody {
        data: Some(head.freeze()),
        trailers: None,
    }
    .chain_with(rest.map_err(|e: BoxError| e));
    Ok(Prepared::Streaming(chained.boxed_unsync()))
}

/// Maps a body error from the stream to a [`BodyError`]: an exceeded limit is 413.
pub fn classify(error: BoxError, limit: u64) -> BodyError {
    if is_too_large(&*error) {
        return BodyError::TooLarge { limit };
    }
    BodyError::Read(error)
}

/// True when `error` (or its cause) is a request body that outgrew its limit.
pub fn is_too_large(mut error: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        match error.source() {
            Some(source) => error = source,
            None => return false,
        }
    }
}

/// Yields a buffer, then optional trailers.
struct ReplayBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl ReplayBody {
    /// This body followed by `next` (for a read-ahead prefix of a streamed body).
    fn chain_with<B>(self, next: B) -> Chain<B> {
        Chain {
            first: Some(self),
            next,
        }
    }
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(data) = self.data.take().filter(|d| !d.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        self.data = None;
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.as_ref().is_none_or(Bytes::is_empty) && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// A prefix body followed by the rest of the stream.
struct Chain<B> {
    first: Option<ReplayBody>,
    next: B,
}

impl<B> Body for Chain<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(first) = self.first.as_mut() {
            if let Some(data) = first.data.take().filter(|d| !d.is_empty()) {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            self.first = None;
        }
        Pin::new(&mut self.next).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.as_ref().is_none_or(ReplayBody::is_end_stream) && self.next.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self
            .first
            .as_ref()
            .map_or(0, |f| f.data.as_ref().map_or(0, |d| d.len() as u64));
        let next = self.next.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(next.lower() + first);
        if let Some(upper) = next.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;

    type Frame1 = Result<Frame<Bytes>, BoxError>;
    type Frames = Vec<Frame1>;

    fn chunks(parts: Frames) -> StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Frame1>>> {
        StreamBody::new(futures_util::stream::iter(parts))
    }

    #[tokio::test]
    async fn small_body_is_whole_and_replayable() {
        let body = chunks(vec![
            Ok(Frame::data(Bytes::from_static(b"hello "))),
            Ok(Frame::data(Bytes::from_static(b"world"))),
        ]);
        let Prepared::Whole(buf) = prepare(body, 1 << 20).await.unwrap() else {
            panic!("expected whole")
        };
        assert_eq!(buf.data(), &Bytes::from_static(b"hello world"));
        for _ in 0..2 {
            let got = buf.to_body().collect().await.unwrap().to_bytes();
            assert_eq!(got, Bytes::from_static(b"hello world"));
        }
    }

    #[tokio::test]
    async fn large_body_streams_everything() {
        let parts: Vec<_> = (0..40)
            .map(|i| Ok(Frame::data(Bytes::from(vec![i as u8; 4096]))))
            .collect();
        let Prepared::Streaming(body) = prepare(chunks(parts), 1 << 20).await.unwrap() else {
            panic!("expected stream")
        };
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(got.len(), 40 * 4096);
        assert_eq!(got[4096 * 39], 39);
    }

    #[tokio::test]
    async fn limit_applies_to_buffered_and_streamed_parts() {
        let parts: Vec<_> = (0..4)
            .map(|_| Ok(Frame::data(Bytes::from(vec![0u8; 1000]))))
            .collect();
        assert!(matches!(
            prepare(chunks(parts), 3000).await,
            Err(BodyError::TooLarge { .. })
        ));
        let parts: Vec<_> = (0..40)
            .map(|_| Ok(Frame::data(Bytes::from(vec![0u8; 4096]))))
            .collect();
        let Prepared::Streaming(body) = prepare(chunks(parts), 100_000).await.unwrap() else {
            panic!()
        };
        let err = body.collect().await.unwrap_err();
        assert!(is_too_large(&*err), "{err}");
    }

    #[tokio::test]
    async fn broken_framing_is_a_read_error() {
        let parts: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"x"))),
            Err("bad chunk size".into()),
        ];
        assert!(matches!(
            prepare(chunks(parts), 1000).await,
            Err(BodyError::Read(_))
        ));
    }

    #[tokio::test]
    async fn trailers_survive_buffering() {
        let mut t = HeaderMap::new();
        t.insert("x-checksum", "1".parse().unwrap());
        let parts = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::trailers(t)),
        ];
        let Prepared::Whole(buf) = prepare(chunks(parts), 1000).await.unwrap() else {
            panic!()
        };
        let collected = buf.to_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "1");
    }
}

//! HTTP/1.1 towards upstreams, by hand: the request head written out, the response head
//! parsed and the response body's framing decided and decoded.
//!
//! hyper's client runs every connection in a task of its own, so each request crossed two
//! tasks and back, and its client machinery was about a third of a proxied request's
//! instructions (bench/hotspots.md). These functions let the request's own task do the
//! exchange. They follow hyper's client rules (RFC 9112 §6.3 for response framing, the
//! same limits), so an upstream sees the same requests and the client the same answers.
//! The client side of the proxy, where smuggling is fought, stays with hyper's server.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version, request, response};

use super::headers::tokens;

/// Fields a response head may have at most (hyper's default).
const MAX_HEADERS: usize = 100;
/// Bytes a response head may take at most, 1xx heads before it included (hyper's default).
pub const MAX_HEAD: usize = 8192 + 4096 * 100;
/// Bytes a chunk-size line may take at most, extensions included.
const MAX_CHUNK_LINE: usize = 4096;
/// Bytes a chunked body's trailer section may take at most.
const MAX_TRAILERS: usize = 16 * 1024;
/// Trailer fields at most.
const MAX_TRAILER_FIELDS: usize = 64;

/// Why an upstream's answer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The response head is not HTTP/1.x (httparse's reason).
    #[error("invalid response head: {0}")]
    Head(httparse::Error),
    /// The head grew past [`MAX_HEAD`] bytes.
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// A status code outside 100–999.
    #[error("invalid status code")]
    Status,
    /// Content-Length not a number, or several that differ.
    #[error("invalid Content-Length")]
    ContentLength,
    /// Transfer-Encoding in an HTTP/1.0 response.
    #[error("Transfer-Encoding in an HTTP/1.0 response")]
    TransferEncodingInHttp10,
    /// A chunk-size line that is not hex digits, optional extensions and CRLF.
    #[error("invalid chunk size line")]
    ChunkSize,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    /// A trailer section that does not parse, or is too large.
    #[error("invalid trailer section")]
    Trailers,
}

/// How a request body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// Exactly this many bytes (no body at all is `Length(0)`).
    Length(u64),
    /// `Transfer-Encoding: chunked`, then the trailer fields the request's `Trailer` names.
    Chunked,
}

/// What the body of a request looks like before it is sent.
#[derive(Debug, Clone, Copy)]
pub struct BodyShape {
    /// The body is known to be empty.
    pub empty: bool,
    /// The body knows its exact length.
    pub exact: Option<u64>,
}

/// Writes the request head for `parts` into `dst` and says how its body is framed.
///
/// The proxy frames the body itself, as hyper's client did: a `Content-Length` the request
/// carries is kept and holds the body to it; otherwise a body of known length gets one and
/// any other body is sent chunked. `Transfer-Encoding` from elsewhere is dropped (the
/// proxy removes it as hop-by-hop before this).
pub fn encode_request(
    parts: &mut request::Parts,
    body: BodyShape,
    dst: &mut Vec<u8>,
) -> RequestFraming {
    let headers = &mut parts.headers;
    headers.remove(header::TRANSFER_ENCODING);
    let framing = if body.empty {
        RequestFraming::Length(0)
    } else if let Ok(Some(length)) = content_length(headers) {
        RequestFraming::Length(length)
    } else if let Some(length) = body.exact {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        RequestFraming::Length(length)
    } else {
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        RequestFraming::Chunked
    };
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    dst.reserve(64 + target.len() + 64 * headers.len());
    dst.extend_from_slice(parts.method.as_str().as_bytes());
    dst.push(b' ');
    dst.extend_from_slice(target.as_bytes());
    dst.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers.iter() {
        write_field(name, value, dst);
    }
    dst.extend_from_slice(b"\r\n");
    framing
}

/// Writes a `name: value` line.
fn write_field(name: &HeaderName, value: &HeaderValue, dst: &mut Vec<u8>) {
    dst.extend_from_slice(name.as_str().as_bytes());
    dst.extend_from_slice(b": ");
    dst.extend_from_slice(value.as_bytes());
    dst.extend_from_slice(b"\r\n");
}

/// Writes the end of a chunked body: the last chunk, the trailer fields the request named in
/// its `Trailer` field (none when `declared` is empty), the final CRLF.
pub fn encode_last_chunk(declared: &[HeaderValue], trailers: &HeaderMap, dst: &mut Vec<u8>) {
    dst.extend_from_slice(b"0\r\n");
    let named = |name: &HeaderName| {
        declared
            .iter()
            .flat_map(tokens)
            .any(|token| token.eq_ignore_ascii_case(name.as_str()))
    };
    for (name, value) in trailers {
        if named(name) && !is_framing_field(name) {
            write_field(name, value, dst);
        }
    }
    dst.extend_from_slice(b"\r\n");
}

/// Fields never allowed in a trailer section (RFC 9110 §6.5.1): framing, routing, control.
fn is_framing_field(name: &HeaderName) -> bool {
    [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::HOST,
        header::CONTENT_TYPE,
        header::TRAILER,
        header::TE,
        header::CONNECTION,
    ]
    .contains(name)
}

/// Writes a chunk's size line for `len` bytes of data.
pub fn encode_chunk_size(len: usize, dst: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut rest = len;
    loop {
        at -= 1;
        digits[at] = HEX[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    dst.extend_from_slice(&digits[at..]);
    dst.extend_from_slice(b"\r\n");
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: HEAD, 204, 304.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Everything until the upstream closes.
    UntilClose,
    /// The connection switches protocols (101, or 2xx to CONNECT): no HTTP body follows.
    Upgrade,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status, version, fields; a reason phrase other than the standard one as hyper's
    /// `ReasonPhrase` extension, so the client sees it too.
    pub parts: response::Parts,
    /// How the body is delimited.
    pub framing: ResponseFraming,
    /// Whether the connection may carry another request after this answer.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf` and removes it (and any 1xx interim heads
/// before it). `Ok(None)`: more bytes are needed.
pub fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, Malformed> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let (len, code, reason, minor, positions) = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut parsed, buf, &mut fields)
        {
            Ok(httparse::Status::Complete(len)) => {
                // Where each name and value is, to slice them out of the head once it is
                // split off the buffer (it is borrowed while parsed).
                let base = buf.as_ptr() as usize;
                let span = |s: &[u8]| {
                    let start = s.as_ptr() as usize - base;
                    start..start + s.len()
                };
                let positions: Vec<_> = parsed
                    .headers
                    .iter()
                    .map(|field| (span(field.name.as_bytes()), span(field.value)))
                    .collect();
                let reason = span(parsed.reason.unwrap_or("").as_bytes());
                (
                    len,
                    parsed.code.unwrap_or(0),
                    reason,
                    parsed.version.unwrap_or(1),
                    positions,
                )
            }
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(Malformed::HeadTooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(Malformed::Head(e)),
        };
        let status = StatusCode::from_u16(code).map_err(|_| Malformed::Status)?;
        let head = buf.split_to(len).freeze();
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            // 100 Continue and the like: the final answer follows.
            continue;
        }
        let version = if minor == 1 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let mut keep_alive = version == Version::HTTP_11;
        let mut headers = HeaderMap::with_capacity(positions.len());
        for (name, value) in positions {
            let name = HeaderName::from_bytes(&head[name])
                .map_err(|_| Malformed::Head(httparse::Error::HeaderName))?;
            let value = HeaderValue::from_maybe_shared(head.slice(value))
                .map_err(|_| Malformed::Head(httparse::Error::HeaderValue))?;
            if name == header::CONNECTION {
                keep_alive = connection_allows_reuse(&value, keep_alive);
            }
            headers.append(name, value);
        }
        let framing = response_framing(status, version, &headers, method)?;
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = status;
        parts.version = version;
        parts.headers = headers;
        let reason = &head[reason];
        if status.canonical_reason().map(str::as_bytes) != Some(reason) {
            if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason) {
                parts.extensions.insert(phrase);
            }
        }
        let keep_alive = keep_alive && framing != ResponseFraming::Upgrade;
        return Ok(Some(ResponseHead {
            parts,
            framing,
            keep_alive,
        }));
    }
}

/// Whether a `Connection` value lets the connection carry another request (`close` ends an
/// HTTP/1.1 connection; only `keep-alive` keeps an HTTP/1.0 one).
fn connection_allows_reuse(value: &HeaderValue, http11_default: bool) -> bool {
    let has = |token: &str| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    if http11_default {
        !has("close")
    } else {
        has("keep-alive")
    }
}

/// How the body of a response with this head to `method` is delimited (RFC 9112 §6.3).
fn response_framing(
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
    method: &Method,
) -> Result<ResponseFraming, Malformed> {
    match status.as_u16() {
        101 => return Ok(ResponseFraming::Upgrade),
        204 | 304 => return Ok(ResponseFraming::Empty),
        _ => {}
    }
    if method == Method::HEAD {
        return Ok(ResponseFraming::Empty);
    }
    if method == Method::CONNECT && status.is_success() {
        return Ok(ResponseFraming::Upgrade);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(Malformed::TransferEncodingInHttp10);
        }
        return Ok(if last_coding_is_chunked(headers) {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::UntilClose
        });
    }
    Ok(match content_length(headers)? {
        Some(length) => ResponseFraming::Length(length),
        None => ResponseFraming::UntilClose,
    })
}

/// Whether the last transfer coding named is `chunked`.
fn last_coding_is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|value| value.as_bytes().rsplit(|&b| b == b',').next())
        .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The `Content-Length`, if any: every field and list element must be the same number.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, Malformed> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let digits = element.trim_ascii();
            if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(Malformed::ContentLength);
            }
            let n = digits
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if length.is_some_and(|seen| seen != n) {
                return Err(Malformed::ContentLength);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// Reads a chunked body from the connection's read buffer, a piece at a time.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, expecting CRLF.
    DataEnd,
    /// After the last chunk, expecting trailer fields or the final CRLF.
    Trailers,
    /// The body has ended.
    Done,
}

/// What the decoder found next in the buffer.
#[derive(Debug, PartialEq)]
pub enum Chunk {
    /// Body bytes.
    Data(Bytes),
    /// The body ended, with these trailer fields (possibly none).
    End(HeaderMap),
    /// More bytes are needed.
    More,
}

impl ChunkedDecoder {
    /// Takes the next piece of the body out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Chunk, Malformed> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(size) = chunk_size_line(buf)? else {
                        return Ok(Chunk::More);
                    };
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Chunk::More);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Chunk::Data(data));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Chunk::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Malformed::ChunkEnd);
                    }
                    let _ = buf.split_to(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(trailers) = trailer_section(buf)? else {
                        return Ok(Chunk::More);
                    };
                    self.state = ChunkState::Done;
                    return Ok(Chunk::End(trailers));
                }
                ChunkState::Done => return Ok(Chunk::End(HeaderMap::new())),
            }
        }
    }
}

/// Parses and removes a chunk-size line (`hex [; extensions] CRLF`); `None` until complete.
fn chunk_size_line(buf: &mut BytesMut) -> Result<Option<u64>, Malformed> {
    let Some(lf) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_CHUNK_LINE {
            return Err(Malformed::ChunkSize);
        }
        return Ok(None);
    };
    if lf == 0 || buf[lf - 1] != b'\r' || lf > MAX_CHUNK_LINE {
        return Err(Malformed::ChunkSize);
    }
    let line = &buf[..lf - 1];
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(Malformed::ChunkSize);
    }
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        (n << 4) | u64::from(v)
    });
    // What may follow the size: whitespace, then `;` extensions of visible characters.
    let rest = &line[digits..];
    let rest = rest.trim_ascii_start();
    let valid = rest.is_empty()
        || (rest[0] == b';'
            && rest
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)));
    if !valid {
        return Err(Malformed::ChunkSize);
    }
    let _ = buf.split_to(lf + 1);
    Ok(Some(size))
}

/// Parses and removes the trailer section ending a chunked body; `None` until complete.
fn trailer_section(buf: &mut BytesMut) -> Result<Option<HeaderMap>, Malformed> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf.starts_with(b"\r\n") {
        let _ = buf.split_to(2);
        return Ok(Some(HeaderMap::new()));
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    match httparse::parse_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete((len, parsed))) => {
            let mut trailers = HeaderMap::with_capacity(parsed.len());
            for field in parsed {
                let name = HeaderName::from_bytes(field.name.as_bytes())
                    .map_err(|_| Malformed::Trailers)?;
                let value =
                    HeaderValue::from_bytes(field.value).map_err(|_| Malformed::Trailers)?;
                trailers.append(name, value);
            }
            let _ = buf.split_to(len);
            Ok(Some(trailers))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILERS => Err(Malformed::Trailers),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(Malformed::Trailers),
    }
}

#[cfg(test)]
mod tests;

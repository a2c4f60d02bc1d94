//! A hand-written HTTP/2 client over raw TCP (RFC 9113), so a test can send what no
//! well-behaved client library would: more streams than the server allows, streams reset as
//! soon as they are opened, endless CONTINUATION frames, connection-specific fields.
//!
//! Header blocks are encoded as HPACK literals without indexing and without Huffman coding
//! (RFC 7541 §6.2.2), so what a test writes is exactly what the server decodes. Of the
//! server's header blocks only `:status` is read, which is all these tests look at.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Error codes (RFC 9113 §7).
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// SETTINGS_MAX_CONCURRENT_STREAMS.
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// One frame as read off the wire.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier.
    pub stream: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let bytes = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }

    /// The (identifier, value) pairs of a SETTINGS frame.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        if self.kind != SETTINGS {
            return Vec::new();
        }
        self.payload
            .chunks_exact(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect()
    }

    /// The `:status` of a HEADERS frame, when the server sent it as the block's first field.
    pub fn status(&self) -> Option<u16> {
        if self.kind != HEADERS {
            return None;
        }
        status_of(self.payload.get(self.block_start()?..)?)
    }

    /// Where the header block starts in a HEADERS payload (after padding length and priority).
    fn block_start(&self) -> Option<usize> {
        let padded = self.flags & 0x8 != 0;
        let priority = self.flags & 0x20 != 0;
        let start = usize::from(padded) + if priority { 5 } else { 0 };
        (start <= self.payload.len()).then_some(start)
    }
}

/// Encodes one frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a frame payload under 16 MiB");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The connection preface followed by an empty SETTINGS frame.
pub fn preface() -> Vec<u8> {
    [PREFACE.to_vec(), frame(SETTINGS, 0, 0, &[])].concat()
}

/// A RST_STREAM frame.
pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// Appends an HPACK integer with an `n`-bit prefix whose high bits are `first` (RFC 7541 §5.1).
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// Appends one field as a literal without indexing, new name, no Huffman coding.
pub fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x00);
    integer(out, 0x00, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    integer(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

/// The header block of a request to `shop.example` over h2c: the pseudo-header fields
/// (`:method`, `:scheme`, `:authority`, `:path`, any of them replaced by a same-named entry of
/// `fields`), then the other `fields` in order.
pub fn block(method: &str, path: &str, fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, default) in [
        (":method", method.as_bytes()),
        (":scheme", b"http".as_slice()),
        (":authority", b"shop.example".as_slice()),
        (":path", path.as_bytes()),
    ] {
        let value = fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(default, |(_, v)| *v);
        field(&mut block, name, value);
    }
    for (name, value) in fields.iter().filter(|(n, _)| !n.starts_with(':')) {
        field(&mut block, name, value);
    }
    block
}

/// The header block of `GET path` with `extra` fields.
pub fn get_block(path: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    block("GET", path, extra)
}

/// A HEADERS frame carrying a whole request without a body.
pub fn get(stream: u32, path: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        stream,
        &get_block(path, extra),
    )
}

/// The `:status` a server's header block starts with: an indexed static entry (RFC 7541
/// Appendix A: 200 204 206 304 400 404 500) or a literal whose name is static entry 8.
fn status_of(block: &[u8]) -> Option<u16> {
    let first = *block.first()?;
    let (name_index, prefix) = match first {
        b if b & 0x80 != 0 => {
            return match b & 0x7f {
                8 => Some(200),
                9 => Some(204),
                10 => Some(206),
                11 => Some(304),
                12 => Some(400),
                13 => Some(404),
                14 => Some(500),
                _ => None,
            };
        }
        b if b & 0xc0 == 0x40 => (b & 0x3f, 1),
        b if b & 0xf0 == 0x00 || b & 0xf0 == 0x10 => (b & 0x0f, 1),
        _ => return None,
    };
    if !(8..=14).contains(&name_index) {
        return None;
    }
    let length_byte = *block.get(prefix)?;
    let length = usize::from(length_byte & 0x7f);
    let raw = block.get(prefix + 1..prefix + 1 + length)?;
    let text = if length_byte & 0x80 != 0 {
        huffman_digits(raw)?
    } else {
        String::from_utf8(raw.to_vec()).ok()?
    };
    text.parse().ok()
}

/// Decodes a Huffman-coded string of ASCII digits (RFC 7541 Appendix B: `0`–`2` are the 5-bit
/// codes 0–2, `3`–`9` the 6-bit codes 0x19–0x1f); `None` for anything else.
fn huffman_digits(raw: &[u8]) -> Option<String> {
    let bits: Vec<u8> = raw
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |i| (byte >> i) & 1))
        .collect();
    let mut text = String::new();
    let mut at = 0;
    while bits.len() - at >= 5 {
        let five = bits[at..at + 5].iter().fold(0u8, |acc, b| acc << 1 | b);
        if five < 3 {
            text.push(char::from(b'0' + five));
            at += 5;
            continue;
        }
        if bits[at..].iter().all(|&b| b == 1) {
            break;
        }
        let six = five << 1 | *bits.get(at + 5)?;
        if !(0x19..=0x1f).contains(&six) {
            return None;
        }
        text.push(char::from(b'3' + (six - 0x19)));
        at += 6;
    }
    Some(text)
}

/// A raw HTTP/2 connection: writes whatever it is given, reads frames one at a time.
pub struct Conn {
    socket: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

/// What a connection's reader saw last.
#[derive(Debug)]
pub enum Read {
    /// One whole frame.
    Frame(Frame),
    /// The server closed the connection (or reset it).
    Closed,
    /// Nothing more arrived before the deadline.
    TimedOut,
}

impl Conn {
    /// Connects to `addr` and sends the preface and an empty SETTINGS frame.
    pub async fn open(addr: std::net::SocketAddr) -> Self {
        let socket = TcpStream::connect(addr)
            .await
            .expect("connect to the proxy");
        socket.set_nodelay(true).expect("set TCP_NODELAY");
        let mut conn = Self {
            socket,
            buf: Vec::new(),
            eof: false,
        };
        conn.send(&preface()).await;
        conn
    }

    /// Writes `bytes`; returns whether all were written (the server may already have closed).
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.socket.write_all(bytes).await.is_ok()
    }

    /// Reads the next frame, waiting until `deadline` at most. SETTINGS frames from the server
    /// are acknowledged as they pass.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> Read {
        loop {
            if self.buf.len() >= 9 {
                let len = usize::from(self.buf[0]) << 16
                    | usize::from(self.buf[1]) << 8
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9 + len).collect();
                    let frame = Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]])
                            & 0x7fff_ffff,
                        payload: head[9..].to_vec(),
                    };
                    if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                        // Ignored if the server has already gone: the frame is still reported.
                        let _ = self.send(&frame_ack()).await;
                    }
                    return Read::Frame(frame);
                }
            }
            if self.eof {
                return Read::Closed;
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.socket.read(&mut chunk)).await {
                Err(_) => return Read::TimedOut,
                Ok(Ok(0)) | Ok(Err(_)) => self.eof = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads frames until `done` says so (returning true), the connection closes, or `within`
    /// passes; returns every frame read and whether the connection was closed.
    pub async fn read_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&[Frame]) -> bool,
    ) -> (Vec<Frame>, bool) {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            if done(&frames) {
                return (frames, false);
            }
            match self.next(deadline).await {
                Read::Frame(frame) => frames.push(frame),
                Read::Closed => return (frames, true),
                Read::TimedOut => return (frames, false),
            }
        }
    }
}

fn frame_ack() -> Vec<u8> {
    frame(SETTINGS, ACK, 0, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decode_from_static_entries_and_literals() {
        let indexed = Frame {
            kind: HEADERS,
            flags: END_HEADERS,
            stream: 1,
            payload: vec![0x88],
        };
        assert_eq!(indexed.status(), Some(200));
        // Literal with incremental indexing, name :status (8), raw value "431".
        assert_eq!(status_of(&[0x48, 0x03, b'4', b'3', b'1']), Some(431));
        // The same, Huffman-coded: '4' 011010, '3' 011001, '1' 00001, then 7 bits of padding.
        assert_eq!(status_of(&[0x48, 0x83, 0x69, 0x90, 0xff]), Some(431));
        // '5' 011011, '0' 00000, '2' 00010: exactly two bytes.
        assert_eq!(status_of(&[0x48, 0x82, 0x6c, 0x02]), Some(502));
    }

    #[test]
    fn large_integers_take_continuation_bytes() {
        let mut out = Vec::new();
        integer(&mut out, 0, 7, 1337);
        assert_eq!(out, [0x7f, 0xba, 0x09]);
    }
}

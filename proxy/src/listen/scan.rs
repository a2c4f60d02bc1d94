//! A thin inspector over the bytes a client sends on an HTTP/1.x connection, run before
//! hyper parses them.
//!
//! It exists for what hyper's parsed request cannot show: a head carrying both
//! Content-Length and Transfer-Encoding (hyper keeps one and drops the other, RFC 9112 §6.1)
//! and Transfer-Encoding with unusual whitespace around its value. To find each head it
//! follows the message framing the way hyper does (the same `httparse`, Content-Length or
//! chunked bodies), and it tells the connection when a head starts and ends, which is what
//! separates the header read timeout from the idle timeout.
//!
//! Cost: one `httparse` pass per request head (hyper makes the same pass), a look at each
//! chunk-size line, and nothing per body byte. It stops following ([`State::Off`]) at HTTP/2,
//! at an upgrade or CONNECT, and at anything hyper itself refuses.

use std::mem::MaybeUninit;

use super::watch::{Activity, Mode};

/// Most header fields a head may carry (the `max_headers` config key is validated against it).
pub const MAX_HEADERS: usize = 512;

/// Longest chunk-size or trailer line followed; longer ones stop the scanner (hyper refuses
/// them too, or the client is not worth following).
const MAX_LINE: usize = 4096;

/// Follows request heads and bodies on one connection.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// Bytes of a head or line split across reads.
    pending: Vec<u8>,
    max_headers: usize,
    max_head: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for, or reading, a request head.
    Head,
    /// In a body of this many more bytes.
    Fixed(u64),
    /// In a chunked body.
    Chunked(Chunk),
    /// Not following any more.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    SizeLine,
    Data(u64),
    /// The CRLF after chunk data; the flag says whether the CR was seen.
    DataEnd(bool),
    Trailers,
}

/// What a complete head says about the bytes after it.
enum Next {
    Body(State),
    Refuse(&'static str),
    Stop(Mode),
}

impl Scanner {
    /// A scanner expecting a request head; heads over `max_head` bytes or `max_headers`
    /// fields stop it (hyper answers those with 431).
    pub fn new(max_headers: usize, max_head: usize) -> Self {
        Self {
            state: State::Head,
            pending: Vec::new(),
            max_headers: max_headers.min(MAX_HEADERS),
            max_head,
        }
    }

    /// Follows `bytes`, the next bytes the client sent, reporting to `activity`. An error
    /// is the offset in `bytes` of a control byte inside a chunk-size line, which hyper lets
    /// through in chunk extensions: the caller replaces it with a bare LF, which hyper's
    /// chunk decoder refuses in every state, so the body fails and the client gets 400.
    pub fn feed(&mut self, mut bytes: &[u8], activity: &Activity) -> Result<(), usize> {
        let mut offset = 0;
        while !bytes.is_empty() {
            let used = match self.state {
                State::Off => return Ok(()),
                State::Head => self.head(bytes, activity),
                State::Fixed(left) => {
                    let used = left.min(bytes.len() as u64);
                    self.state = if used == left {
                        State::Head
                    } else {
                        State::Fixed(left - used)
                    };
                    used as usize
                }
                State::Chunked(chunk) => match self.chunked(chunk, bytes) {
                    Ok(used) => used,
                    Err(at) => {
                        activity.refuse("control bytes in a chunk-size line");
                        self.state = State::Off;
                        self.pending = Vec::new();
                        return Err(offset + at);
                    }
                },
            };
            offset += used;
            bytes = &bytes[used..];
            if self.state == State::Off {
                self.pending = Vec::new();
            }
        }
        Ok(())
    }

    /// Reads (part of) a head; returns how many bytes of `bytes` it used.
    fn head(&mut self, bytes: &[u8], activity: &Activity) -> usize {
        let before = self.pending.len();
        if before == 0 {
            activity.head_started();
        }
        if !bytes.contains(&b'\n') {
            return self.keep_partial(bytes, activity);
        }
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let fields = &mut fields[..self.max_headers];
        let mut request = httparse::Request::new(&mut []);
        let (outcome, next) = if before == 0 {
            let outcome = request.parse_with_uninit_headers(bytes, fields);
            let next = match outcome {
                Ok(httparse::Status::Complete(_)) => Some(judge(&request, bytes)),
                _ => None,
            };
            (outcome, next)
        } else {
            self.pending.extend_from_slice(bytes);
            let outcome = request.parse_with_uninit_headers(&self.pending, fields);
            let next = match outcome {
                Ok(httparse::Status::Complete(_)) => Some(judge(&request, &self.pending)),
                _ => None,
            };
            (outcome, next)
        };
        match (outcome, next) {
            (Ok(httparse::Status::Complete(len)), Some(next)) => {
                self.pending.clear();
                if let Next::Refuse(why) = next {
                    activity.refuse(why);
                }
                activity.head_done();
                self.state = match next {
                    Next::Body(state) => state,
                    Next::Refuse(_) => State::Off,
                    Next::Stop(mode) => {
                        activity.set_mode(mode);
                        State::Off
                    }
                };
                len - before
            }
            (Ok(_), _) => {
                if before == 0 {
                    self.keep_partial(bytes, activity)
                } else {
                    self.check_size(activity);
                    bytes.len()
                }
            }
            (Err(_), _) => {
                let buffered = if before == 0 { bytes } else { &self.pending };
                let mode = if buffered.starts_with(b"PRI * HTTP/2.0") {
                    Mode::Http2
                } else {
                    Mode::Untracked
                };
                activity.set_mode(mode);
                self.state = State::Off;
                bytes.len()
            }
        }
    }

    fn keep_partial(&mut self, bytes: &[u8], activity: &Activity) -> usize {
        self.pending.extend_from_slice(bytes);
        self.check_size(activity);
        bytes.len()
    }

    /// A head larger than hyper accepts: hyper answers 431; stop following.
    fn check_size(&mut self, activity: &Activity) {
        if self.pending.len() > self.max_head {
            activity.set_mode(Mode::Untracked);
            self.state = State::Off;
        }
    }

    /// Follows a chunked body; returns how many bytes of `bytes` it used.
    /// An error is the offset in `bytes` of a control byte in a chunk-size line.
    fn chunked(&mut self, chunk: Chunk, bytes: &[u8]) -> Result<usize, usize> {
        match chunk {
            Chunk::Data(left) => {
                let used = left.min(bytes.len() as u64);
                self.state = State::Chunked(if used == left {
                    Chunk::DataEnd(false)
                } else {
                    Chunk::Data(left - used)
                });
                Ok(used as usize)
            }
            Chunk::DataEnd(cr_seen) => {
                self.state = match (cr_seen, bytes[0]) {
                    (false, b'\r') => State::Chunked(Chunk::DataEnd(true)),
                    (true, b'\n') => State::Chunked(Chunk::SizeLine),
                    _ => State::Off,
                };
                Ok(1)
            }
            Chunk::SizeLine | Chunk::Trailers => {
                let line_end = bytes.iter().position(|&b| b == b'\n');
                if chunk == Chunk::SizeLine {
                    let line = &bytes[..line_end.unwrap_or(bytes.len())];
                    if let Some(at) = line.iter().position(|&b| is_control(b)) {
                        return Err(at);
                    }
                }
                let Some(end) = line_end else {
                    self.pending.extend_from_slice(bytes);
                    if self.pending.len() > MAX_LINE {
                        self.state = State::Off;
                    }
                    return Ok(bytes.len());
                };
                self.pending.extend_from_slice(&bytes[..=end]);
                self.state = if chunk == Chunk::SizeLine {
                    match chunk_size(&self.pending) {
                        Some(0) => State::Chunked(Chunk::Trailers),
                        Some(size) => State::Chunked(Chunk::Data(size)),
                        None => State::Off,
                    }
                } else if self.pending == b"\r\n" {
                    State::Head
                } else if self.pending.len() > MAX_LINE || !self.pending.ends_with(b"\r\n") {
                    State::Off
                } else {
                    State::Chunked(Chunk::Trailers)
                };
                self.pending.clear();
                Ok(end + 1)
            }
        }
    }
}

/// Decides what follows a complete head, as hyper frames it (RFC 9112 §6.3).
fn judge(request: &httparse::Request<'_, '_>, buf: &[u8]) -> Next {
    let mut lengths = 0usize;
    let mut length: Option<u64> = None;
    let mut length_valid = true;
    let mut codings = 0usize;
    let mut last_chunked = false;
    let mut upgrade = false;
    for field in request.headers.iter() {
        if field.name.eq_ignore_ascii_case("transfer-encoding") {
            codings += 1;
            if !plainly_spaced(field.value, buf) {
                return Next::Refuse("Transfer-Encoding with unusual whitespace");
            }
            last_chunked = field
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if field.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            for part in field.value.split(|&b| b == b',') {
                let value = std::str::from_utf8(part.trim_ascii())
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok());
                match (value, length) {
                    (Some(v), None) => length = Some(v),
                    (Some(v), Some(seen)) if v == seen => {}
                    _ => length_valid = false,
                }
            }
        } else if field.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if codings > 0 && lengths > 0 {
        return Next::Refuse("both Content-Length and Transfer-Encoding");
    }
    let http11 = request.version == Some(1);
    if request.method == Some("CONNECT") || (upgrade && http11) {
        // What follows may be another protocol; the listener closes the connection after
        // an upgrade that is not accepted, so there is no next head to follow.
        return Next::Stop(Mode::Untracked);
    }
    if codings > 0 {
        if !http11 || !last_chunked {
            return Next::Stop(Mode::Untracked);
        }
        return Next::Body(State::Chunked(Chunk::SizeLine));
    }
    match (length_valid, length) {
        (false, _) => Next::Stop(Mode::Untracked),
        (true, None | Some(0)) => Next::Body(State::Head),
        (true, Some(n)) => Next::Body(State::Fixed(n)),
    }
}

/// Whether a field value sits in its line as `Name: value` or `Name:value`, with no other
/// whitespace before or after it (httparse trims it, hiding it from the header map).
fn plainly_spaced(value: &[u8], buf: &[u8]) -> bool {
    let start = (value.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    if start > buf.len() {
        return false;
    }
    let before = &buf[..start];
    let after = &buf[start + value.len()..];
    (before.ends_with(b": ") || before.ends_with(b":"))
        && !before.ends_with(b"  ")
        && (after.starts_with(b"\r\n") || after.starts_with(b"\n"))
        && !value.is_empty()
}

/// A control byte RFC 9112 §7.1.1 allows nowhere in a chunk-size line and hyper does not
/// check in extensions (CR and LF are framing, which hyper checks; HTAB is whitespace).
fn is_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f
}

/// The size on a chunk-size line (`hex [; extensions] CRLF`), if it is one.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let rest = &line[digits..];
    if !(rest.is_empty() || rest.starts_with(b";")) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> (Activity, Scanner) {
        let activity = Activity::new();
        let mut scanner = Scanner::new(100, 64 * 1024);
        for piece in pieces {
            let _ = scanner.feed(piece, &activity);
        }
        (activity, scanner)
    }

    #[test]
    fn content_length_with_transfer_encoding_is_refused_in_either_order() {
        for head in [
            &b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        ] {
            let (activity, _) = scan(&[head]);
            assert_eq!(
                activity.refusal(0),
                Some("both Content-Length and Transfer-Encoding")
            );
        }
    }

    #[test]
    fn oddly_spaced_transfer_encoding_is_refused() {
        for line in [
            &b"Transfer-Encoding: \tchunked"[..],
            b"Transfer-Encoding: chunked ",
            b"Transfer-Encoding:  chunked",
        ] {
            let head = [b"POST / HTTP/1.1\r\n", line, b"\r\n\r\n0\r\n\r\n"].concat();
            let (activity, _) = scan(&[&head]);
            assert!(
                activity.refusal(0).is_some(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let (activity, scanner) = scan(&[b"POST / HTTP/1.1\r\nTransfer-Encoding:chunked\r\n\r\n"]);
        assert_eq!(activity.refusal(0), None);
        assert_eq!(scanner.state, State::Chunked(Chunk::SizeLine));
    }

    #[test]
    fn follows_bodies_to_the_next_head_even_split_byte_by_byte() {
        let stream: &[u8] = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
            POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
            POST /c HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let whole = scan(&[stream]).0;
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let split = scan(&bytes).0;
        for activity in [whole, split] {
            // Only the third request, and any after it, are refused.
            assert_eq!(activity.refusal(1), None);
            assert_eq!(
                activity.refusal(2),
                Some("both Content-Length and Transfer-Encoding")
            );
        }
    }

    #[test]
    fn control_bytes_in_a_chunk_extension_are_pointed_at() {
        let activity = Activity::new();
        let mut scanner = Scanner::new(100, 64 * 1024);
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(scanner.feed(head, &activity), Ok(()));
        assert_eq!(scanner.feed(b"3;x=\x01\r\nabc\r\n", &activity), Err(4));
        assert_eq!(activity.refusal(0), None, "its head was sound");
        assert!(activity.refusal(1).is_some(), "later requests are refused");
    }

    #[test]
    fn a_body_that_looks_like_a_bad_head_is_still_body() {
        let (activity, scanner) = scan(&[
            b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ]);
        assert_eq!(activity.refusal(0), None);
        assert!(matches!(scanner.state, State::Fixed(_)));
    }

    #[test]
    fn head_timing_is_reported() {
        let (activity, _) = scan(&[b"GET / HT"]);
        assert!(activity.head_in_progress());
        let (activity, scanner) = scan(&[b"GET / HT", b"TP/1.1\r\nHost: a\r\n\r\n"]);
        assert!(!activity.head_in_progress());
        assert_eq!(scanner.state, State::Head);
    }

    #[test]
    fn http2_and_upgrades_stop_the_scanner() {
        let (activity, scanner) = scan(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]);
        assert_eq!(scanner.state, State::Off);
        assert_eq!(activity.mode(), Mode::Http2);
        assert!(!activity.head_in_progress());
        let (activity, scanner) = scan(&[
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x05",
        ]);
        assert_eq!(scanner.state, State::Off);
        assert_eq!(activity.mode(), Mode::Untracked);
    }

    #[test]
    fn chunk_size_lines() {
        assert_eq!(chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(chunk_size(b"5;name=value\r\n"), Some(5));
        assert_eq!(chunk_size(b"zz\r\n"), None);
        assert_eq!(chunk_size(b"+5\r\n"), None);
        assert_eq!(chunk_size(b"5\n"), None);
        assert_eq!(chunk_size(b"10000000000000001\r\n"), None);
    }
}

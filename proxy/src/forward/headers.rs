//! Header rules for a hop: what never crosses the proxy, and what the proxy adds.
//!
//! RFC 9110 §7.6.1: hop-by-hop fields and every field named in `Connection` are removed in
//! both directions. Upstream requests gain only `Via`, `X-Forwarded-For/-Proto/-Host` and,
//! when absent, `X-Request-Id` and `traceparent`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Fields that describe one connection, never the message.
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// The request id header the proxy adds when a client sent none.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// What the proxy appends to `Via`.
pub const VIA_VALUE: &str = "1.1 strangler";

/// Removes hop-by-hop fields and the fields `Connection` names.
///
/// When `keep_upgrade` is set (an Upgrade handshake being relayed), `Connection: upgrade` and
/// `Upgrade` are kept so the upstream sees the handshake.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names notes which hop-by-hop fields are there (usually none, or an
    // upstream's `Connection: keep-alive`); only those are looked up again.
    let mut present = 0u8;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // The fields `Connection` names, removed by the token itself. A token naming a hop-by-hop
    // field (`keep-alive`, the usual one) needs no lookup: that field goes below anyway, so
    // the values are copied only when some token names another field.
    let naming_others: Vec<HeaderValue> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter(|value| tokens(value).any(names_other_field))
        .cloned()
        .collect();
    for value in &naming_others {
        for token in tokens(value).filter(|token| names_other_field(token)) {
            headers.remove(token);
        }
    }
    let upgrade = if keep_upgrade {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Where `name` is in [`HOP_BY_HOP`]. Most names are ruled out by their length alone: this
/// runs for every field of every request and response.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    let name = name.as_str();
    match name.len() {
        2 | 7 | 10 | 16 | 17 => HOP_BY_HOP.iter().position(|h| h.as_str() == name),
        _ => None,
    }
}

/// The comma-separated tokens of a list-valued field (`Connection`, `Trailer`), trimmed;
/// none when it is not text.
pub(super) fn tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value.to_str().unwrap_or_default().split(',').map(str::trim)
}

/// Whether a `Connection` token names a field other than the hop-by-hop ones.
fn names_other_field(token: &str) -> bool {
    !token.is_empty()
        && !HOP_BY_HOP
            .iter()
            .any(|h| token.eq_ignore_ascii_case(h.as_str()))
}

/// HTTP/2 may split `cookie` into several fields; an HTTP/1.1 upstream expects one
/// (RFC 9113 §8.2.3).
pub fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let mut joined = Vec::new();
    for value in headers.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// Adds `X-Forwarded-For` (appended), `X-Forwarded-Proto` and `X-Forwarded-Host` (set: the
/// proxy is the front door, so a client's own values are not trusted) and `Via`.
pub fn add_forwarded(
    headers: &mut HeaderMap,
    client_ip: IpAddr,
    proto: &'static str,
    host: Option<&HeaderValue>,
) {
    // The address is formatted on the stack: no `String` per request.
    let mut buf = [0u8; 48];
    let ip = format_ip(client_ip, &mut buf);
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.is_empty() => {
            let mut joined = Vec::with_capacity(prior.len() + 2 + ip.len());
            joined.extend_from_slice(prior.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(ip);
            HeaderValue::from_maybe_shared(bytes::Bytes::from(joined))
        }
        _ => HeaderValue::from_bytes(ip),
    };
    if let Ok(xff) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), xff);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host.clone()),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    append_via(headers);
}

/// `ip` as text in `buf` (an IPv6 address takes at most 45 bytes).
fn format_ip(ip: IpAddr, buf: &mut [u8; 48]) -> &[u8] {
    use std::io::Write;
    if let IpAddr::V4(v4) = ip {
        // By hand: `Display` for an address goes through the formatting machinery, about a
        // thousand instructions on every request.
        let mut len = 0;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                buf[len] = b'.';
                len += 1;
            }
            let digits = [octet / 100, octet / 10 % 10, octet % 10];
            let skip = if octet >= 100 {
                0
            } else if octet >= 10 {
                1
            } else {
                2
            };
            for digit in &digits[skip..] {
                buf[len] = b'0' + digit;
                len += 1;
            }
        }
        return &buf[..len];
    }
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // 48 bytes always fit an address; on the impossible failure the text is cut short.
    let _ = write!(cursor, "{ip}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    &buf[..len]
}

/// Appends this proxy to `Via` (RFC 9110 §7.6.3).
pub fn append_via(headers: &mut HeaderMap) {
    let via = match headers.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.is_empty() => {
            HeaderValue::from_str(&format!("{prior}, {VIA_VALUE}")).ok()
        }
        _ => Some(HeaderValue::from_static(VIA_VALUE)),
    };
    if let Some(via) = via {
        headers.insert(header::VIA, via);
    }
}

/// Source of request ids: a random per-process prefix and a counter, so ids are unique
/// without a syscall or lock per request.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    /// A fresh source with a random prefix.
    pub fn new() -> Self {
        Self {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            counter: AtomicU64::new(1),
        }
    }

    /// The next id: 32 lower-case hex digits (usable as a W3C trace id).
    pub fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 32];
        hex16(self.prefix, &mut id[..16]);
        hex16(n, &mut id[16..]);
        // Only ASCII hex digits were written.
        String::from_utf8_lossy(&id).into_owned()
    }
}

/// Writes `value` as 16 lower-case hex digits into `out` (no formatting machinery: this runs
/// for every request without an id).
fn hex16(value: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate().take(16) {
        *byte = DIGITS[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// Adds `X-Request-Id` and `traceparent` when absent; returns the request's correlation id
/// (the client's `X-Request-Id` when it sent one).
pub fn ensure_request_id(headers: &mut HeaderMap, ids: &RequestIds) -> String {
    if let Some(id) = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
        let id = id.to_owned();
        if !headers.contains_key(&TRACEPARENT) {
            let trace = ids.next();
            insert_traceparent(headers, &trace);
        }
        return id;
    }
    let id = ids.next();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID.clone(), value);
    }
    if !headers.contains_key(&TRACEPARENT) {
        insert_traceparent(headers, &id);
    }
    id
}

/// `traceparent: 00-<trace id>-<its last 16 digits as span id>-01`, assembled on the stack.
fn insert_traceparent(headers: &mut HeaderMap, trace_id: &str) {
    let span = &trace_id[trace_id.len().saturating_sub(16)..];
    let pieces: [&[u8]; 5] = [b"00-", trace_id.as_bytes(), b"-", span.as_bytes(), b"-01"];
    let mut buf = [0u8; 64];
    let mut len = 0;
    for piece in pieces {
        let Some(room) = buf.get_mut(len..len + piece.len()) else {
            return; // not an id this proxy made (those are 32 digits)
        };
        room.copy_from_slice(piece);
        len += piece.len();
    }
    if let Ok(value) = HeaderValue::from_bytes(&buf[..len]) {
        headers.insert(TRACEPARENT.clone(), value);
    }
}

/// True when the request asks to switch protocols (WebSocket and the like).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-connection", "close"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn every_connection_field_counts_and_odd_tokens_are_ignored() {
        let mut h = HeaderMap::new();
        h.append("connection", HeaderValue::from_static("close"));
        h.append(
            "connection",
            HeaderValue::from_static("X-One , bad token, ,x-two"),
        );
        h.insert("x-one", HeaderValue::from_static("1"));
        h.insert("x-two", HeaderValue::from_static("2"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn hop_by_hop_names_are_found_by_length_then_name() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
        }
        for other in [
            "user-agent",
            "x-te",
            "host",
            "upgrade-insecure-requests",
            "connection2",
        ] {
            let name = HeaderName::from_bytes(other.as_bytes()).unwrap();
            assert_eq!(hop_by_hop_index(&name), None, "{other}");
        }
        // Mixed case in `Connection` still names the field; a hop-by-hop token costs no copy.
        let mut h = map(&[
            ("connection", "Keep-Alive, X-Trace"),
            ("keep-alive", "timeout=5"),
            ("x-trace", "1"),
            ("via", "1.1 edge"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["via"]
        );
    }

    #[test]
    fn keeps_upgrade_handshake_when_asked() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "x"),
        ]);
        assert!(is_upgrade_request(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert!(h.contains_key("sec-websocket-key"));
    }

    #[test]
    fn forwarded_headers_append_and_overwrite() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("via", "1.0 edge"),
        ]);
        let host = HeaderValue::from_static("shop.example");
        add_forwarded(&mut h, "127.0.0.1".parse().unwrap(), "http", Some(&host));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["via"], "1.0 edge, 1.1 strangler");
    }

    #[test]
    fn forwarded_for_formats_any_address() {
        for ip in [
            "192.168.100.200",
            "0.0.0.0",
            "10.9.99.100",
            "255.255.255.255",
            "::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
        ] {
            let mut h = HeaderMap::new();
            add_forwarded(&mut h, ip.parse().unwrap(), "https", None);
            let expected: IpAddr = ip.parse().unwrap();
            assert_eq!(h["x-forwarded-for"], expected.to_string().as_str());
            assert!(!h.contains_key("x-forwarded-host"));
        }
    }

    #[test]
    fn every_octet_of_an_ipv4_address_is_written_like_display() {
        for octet in 0..=255u8 {
            let ip = IpAddr::from([octet, 255 - octet, octet / 2, 7]);
            let mut buf = [0u8; 48];
            assert_eq!(format_ip(ip, &mut buf), ip.to_string().as_bytes());
        }
    }

    #[test]
    fn request_id_kept_or_generated() {
        let ids = RequestIds::new();
        let mut h = map(&[("x-request-id", "abc")]);
        assert_eq!(ensure_request_id(&mut h, &ids), "abc");
        assert!(h["traceparent"].to_str().unwrap().starts_with("00-"));
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h, &ids);
        assert_eq!(id.len(), 32);
        assert_eq!(h["x-request-id"], id.as_str());
        let tp = h["traceparent"].to_str().unwrap().to_owned();
        assert_eq!(tp.len(), 55, "{tp}");
        assert_ne!(ids.next(), ids.next());
        let mut out = [0u8; 16];
        hex16(0x0123_4567_89ab_cdef, &mut out);
        assert_eq!(&out, b"0123456789abcdef");
    }

    #[test]
    fn cookies_joined_for_http1() {
        let mut h = map(&[("cookie", "a=1"), ("cookie", "b=2")]);
        join_cookies(&mut h);
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(h["cookie"], "a=1; b=2");
    }
}

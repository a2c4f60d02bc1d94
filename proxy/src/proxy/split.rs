//! Stable per-user splitting for canary (and, later, shadow sampling).
//!
//! A user is identified by the route's `canary.key` (client IP, a header, a cookie or the
//! request id) and hashed with FNV-1a together with the route id into one of 10 000 buckets.
//! FNV-1a is fixed by specification, so every instance of a fleet puts the same user in the
//! same bucket, across restarts and versions.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::COOKIE;

/// Buckets per route; percentages resolve to 0.01 %.
pub const BUCKETS: u32 = 10_000;

/// Where the user key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    /// The client's IP address.
    ClientIp,
    /// A request header's value.
    Header(http::HeaderName),
    /// A cookie's value.
    Cookie(String),
    /// The request id (every request is its own "user").
    RequestId,
}

impl UserKey {
    /// Parses `ip`, `request_id`, `header:NAME` or `cookie:NAME` (validated by config).
    pub fn parse(text: &str) -> Option<Self> {
        match text.split_once(':') {
            None if text == "ip" => Some(Self::ClientIp),
            None if text == "request_id" => Some(Self::RequestId),
            Some(("header", name)) => http::HeaderName::from_bytes(name.trim().as_bytes())
                .ok()
                .map(Self::Header),
            Some(("cookie", name)) if !name.trim().is_empty() => {
                Some(Self::Cookie(name.trim().to_owned()))
            }
            _ => None,
        }
    }

    /// The bucket of this request's user for `route`, in `0..BUCKETS`. A request without the
    /// header or cookie falls back to the client IP, so it is still placed consistently.
    pub fn bucket(
        &self,
        route: &str,
        headers: &HeaderMap,
        client: IpAddr,
        request_id: &str,
    ) -> u32 {
        let mut h = Fnv1a::new();
        h.write(route.as_bytes());
        h.write(&[0xff]);
        match self {
            Self::Header(name) => match headers.get(name) {
                Some(v) => h.write(v.as_bytes()),
                None => write_ip(&mut h, client),
            },
            Self::Cookie(name) => match cookie(headers, name) {
                Some(v) => h.write(v.as_bytes()),
                None => write_ip(&mut h, client),
            },
            Self::ClientIp => write_ip(&mut h, client),
            Self::RequestId => h.write(request_id.as_bytes()),
        }
        (h.finish() % u64::from(BUCKETS)) as u32
    }
}

/// True when `bucket` is inside the first `percent` % of buckets.
pub fn in_share(bucket: u32, percent: f64) -> bool {
    f64::from(bucket) < percent * f64::from(BUCKETS) / 100.0
}

/// A number in `[0, 1)` fixed by `text` (e.g. a request id): a reproducible dice roll.
pub fn roll(text: &str) -> f64 {
    let mut h = Fnv1a::new();
    h.write(text.as_bytes());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn write_ip(h: &mut Fnv1a, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
}

/// The value of cookie `name` in the request's Cookie header(s).
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// FNV-1a, 64 bit.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys() {
        assert_eq!(UserKey::parse("ip"), Some(UserKey::ClientIp));
        assert_eq!(
            UserKey::parse("cookie:session"),
            Some(UserKey::Cookie("session".into()))
        );
        assert!(matches!(
            UserKey::parse("header:x-user"),
            Some(UserKey::Header(_))
        ));
        assert_eq!(UserKey::parse("bogus"), None);
    }

    #[test]
    fn same_user_same_bucket_and_share_close_to_percent() {
        let key = UserKey::parse("cookie:session").unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut inside = 0;
        for i in 0..10_000 {
            let mut h = HeaderMap::new();
            h.insert(
                COOKIE,
                format!("theme=dark; session=user-{i}").parse().unwrap(),
            );
            let b = key.bucket("api", &h, ip, "r");
            assert_eq!(b, key.bucket("api", &h, ip, "other"));
            if in_share(b, 10.0) {
                inside += 1;
            }
        }
        assert!(
            (800..1200).contains(&inside),
            "{inside} of 10000 in a 10% share"
        );
    }

    #[test]
    fn edges() {
        assert!(!in_share(0, 0.0));
        assert!(in_share(BUCKETS - 1, 100.0));
    }
}

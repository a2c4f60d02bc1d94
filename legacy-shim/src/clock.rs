//! What varies between runs, in one place: the current time, uptime and random tokens.
//!
//! With `vary == false` the clock is stopped at [`FIXED_TIME`] and uptime is always 0, so two
//! identical runs render identical bytes. Counter-based ids live in the database (see
//! `store::ids`) because they must survive a restart on a file database.

use std::time::Instant;

use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::datetime;

/// The instant a stopped clock shows: 2026-01-01T00:00:00Z.
pub(crate) const FIXED_TIME: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

/// The shop's clock: real time when `vary`, otherwise stopped at [`FIXED_TIME`].
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    /// Whether time moves (and ids are random).
    vary: bool,
    /// When the shop started, for `uptime_seconds`.
    started: Instant,
}

impl Clock {
    pub(crate) fn new(vary: bool) -> Clock {
        Clock {
            vary,
            started: Instant::now(),
        }
    }

    /// Now, to the second (sub-second digits would only add noise to every diff).
    pub(crate) fn now(&self) -> OffsetDateTime {
        if self.vary {
            let now = OffsetDateTime::now_utc();
            now.replace_nanosecond(0).unwrap_or(now)
        } else {
            FIXED_TIME
        }
    }

    /// Now as RFC 3339, e.g. `2026-01-01T00:00:00Z`.
    pub(crate) fn timestamp(&self) -> String {
        rfc3339(self.now())
    }

    /// Whole seconds since the shop started; 0 on a stopped clock.
    pub(crate) fn uptime_seconds(&self) -> u64 {
        if self.vary {
            self.started.elapsed().as_secs()
        } else {
            0
        }
    }

    /// `len` random lowercase hex digits, or `None` when ids must be deterministic.
    pub(crate) fn random_hex(&self, len: usize) -> Option<String> {
        if !self.vary {
            return None;
        }
        let mut out = String::with_capacity(len + 32);
        while out.len() < len {
            out.push_str(&uuid::Uuid::new_v4().simple().to_string());
        }
        out.truncate(len);
        Some(out)
    }
}

/// RFC 3339 text for a UTC instant (the format every JSON timestamp uses).
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Re-read an RFC 3339 timestamp from the database, for feeds that need other formats.
pub(crate) fn parse_rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or(FIXED_TIME)
}

/// RFC 2822 text, as RSS `pubDate` wants it.
pub(crate) fn rfc2822(at: OffsetDateTime) -> String {
    at.format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_clock_is_fixed() {
        let clock = Clock::new(false);
        assert_eq!(clock.timestamp(), "2026-01-01T00:00:00Z");
        assert_eq!(clock.uptime_seconds(), 0);
        assert_eq!(clock.random_hex(12), None);
        assert_eq!(rfc2822(clock.now()), "Thu, 01 Jan 2026 00:00:00 +0000");
    }

    #[test]
    fn running_clock_has_whole_seconds_and_random_ids() {
        let clock = Clock::new(true);
        assert!(!clock.timestamp().contains('.'));
        let a = clock.random_hex(40).unwrap();
        assert_eq!(a.len(), 40);
        assert_ne!(Some(a), clock.random_hex(40));
    }
}

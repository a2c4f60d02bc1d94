//! Counting what the traffic got back, for the progress lines.

use std::fmt;

/// Answers by status class, and requests that got no answer at all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Answers by class: index 0 is 1xx … index 4 is 5xx.
    classes: [u64; 5],
    /// Requests that failed before an answer (refused, timed out, reset).
    failed: u64,
}

impl Tally {
    /// Counts one answer.
    pub fn answered(&mut self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class] += 1;
    }

    /// Counts one request without an answer.
    pub fn failed(&mut self) {
        self.failed += 1;
    }

    /// Adds another tally to this one.
    pub fn add(&mut self, other: &Tally) {
        for (mine, theirs) in self.classes.iter_mut().zip(other.classes) {
            *mine += theirs;
        }
        self.failed += other.failed;
    }

    /// How many requests got an answer.
    pub fn answers(&self) -> u64 {
        self.classes.iter().sum()
    }

    fn requests(&self) -> u64 {
        self.answers() + self.failed
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [_, ok, redirect, client, server] = self.classes;
        write!(
            f,
            "{} requests: 2xx {ok}, 3xx {redirect}, 4xx {client}, 5xx {server}, no answer {}",
            self.requests(),
            self.failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn counts_by_class_and_adds_up() {
        let mut a = Tally::default();
        a.answered(200);
        a.answered(303);
        a.answered(409);
        a.failed();
        let mut total = Tally::default();
        total.add(&a);
        total.add(&a);
        assert_eq!(
            total.to_string(),
            "8 requests: 2xx 2, 3xx 2, 4xx 2, 5xx 0, no answer 2"
        );
    }
}

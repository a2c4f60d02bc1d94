//! Orders this front just placed, for the order page that follows the checkout's redirect.
//!
//! The carts stay on the monolith, so an order placed through
//! `/api/carts/{session}/checkout` reaches the extracted API only once the API has consumed
//! its `shop.order.placed` event — a moment after the checkout's 303 sent the visitor to
//! `/orders/{id}`. For an order placed here in the last [`KEEP`], the order page waits up to
//! [`WAIT`] for the API to learn of it instead of answering 404 (read-your-writes across the
//! event lag). Any other id is answered at once. Kept in memory, bounded by [`CAPACITY`]: one
//! front instance's visitors are the ones who follow its redirects.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an order counts as just placed.
pub(crate) const KEEP: Duration = Duration::from_secs(60);
/// The longest the order page waits for the API to know a just-placed order.
pub(crate) const WAIT: Duration = Duration::from_secs(3);
/// The pause between two questions to the API while waiting.
pub(crate) const POLL: Duration = Duration::from_millis(50);
/// The most orders remembered; the oldest is forgotten first.
const CAPACITY: usize = 1024;

/// The ids of the orders placed here lately, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    placed: Mutex<VecDeque<(String, Instant)>>,
}

impl Recent {
    /// Remembers that order `id` was just placed.
    pub(crate) fn placed(&self, id: &str) {
        let mut placed = self.lock();
        let now = Instant::now();
        while placed.len() >= CAPACITY
            || placed
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) > KEEP)
        {
            placed.pop_front();
        }
        placed.push_back((id.to_owned(), now));
    }

    /// Whether order `id` was placed here in the last [`KEEP`].
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.lock()
            .iter()
            .any(|(placed, at)| placed == id && at.elapsed() <= KEEP)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Instant)>> {
        // Every change is a whole push or pop: consistent even if a holder panicked.
        self.placed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placed_orders_are_remembered_up_to_the_capacity() {
        let recent = Recent::default();
        assert!(!recent.contains("ord-1"));
        recent.placed("ord-1");
        assert!(recent.contains("ord-1") && !recent.contains("ord-2"));
        for n in 2..=CAPACITY + 1 {
            recent.placed(&format!("ord-{n}"));
        }
        assert!(!recent.contains("ord-1"), "the oldest is forgotten first");
        assert!(recent.contains(&format!("ord-{}", CAPACITY + 1)));
        assert_eq!(recent.lock().len(), CAPACITY);
    }
}

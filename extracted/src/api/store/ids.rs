//! Generated order ids, in the monolith's formats: `ord-` and 12 random hex digits when the
//! clock varies, otherwise `ord-000001`, `ord-000002`… from a counter in the database (so they
//! stay unique on a reopened file database).
//!
//! Orders learnt from the monolith's events keep the monolith's ids; the counter is moved past
//! them, so an order placed here later never takes an id the monolith already gave out.

use crate::api::storage::{DbError, Tx};
use crate::misc::clock::Clock;

/// The counter's name (the monolith's, for the same ids).
const ORDER: &str = "ord";

/// A new order id.
pub(crate) async fn next_order_id(tx: &mut Tx, clock: &Clock) -> Result<String, DbError> {
    if let Some(hex) = clock.random_hex(12) {
        return Ok(format!("{ORDER}-{hex}"));
    }
    let row = tx
        .query_opt(
            "INSERT INTO counters (name, value) VALUES ($1, 1)
             ON CONFLICT (name) DO UPDATE SET value = counters.value + 1
             RETURNING value",
            &[ORDER.into()],
        )
        .await?;
    let n = match row {
        Some(row) => row.int(0)?,
        None => 1,
    };
    Ok(format!("{ORDER}-{n:06}"))
}

/// Note an order id given out elsewhere: counter ids continue after it.
pub(crate) async fn saw_order_id(tx: &mut Tx, id: &str) -> Result<(), DbError> {
    let Some(n) = counter_value(id) else {
        return Ok(());
    };
    tx.execute(
        "INSERT INTO counters (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = $2 WHERE counters.value < $2",
        &[ORDER.into(), n.into()],
    )
    .await?;
    Ok(())
}

/// The counter value inside a counter-style id (`ord-000042` → 42).
fn counter_value(id: &str) -> Option<i64> {
    let digits = id.strip_prefix("ord-")?;
    let counter_like = digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit());
    if counter_like {
        digits.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::counter_value;

    #[test]
    fn only_counter_style_ids_move_the_counter() {
        assert_eq!(counter_value("ord-000042"), Some(42));
        assert_eq!(counter_value("ord-1234567"), Some(1_234_567));
        assert_eq!(counter_value("ord-0a1b2c3d4e5f"), None);
        assert_eq!(counter_value("ord-12"), None);
        assert_eq!(counter_value("sess-000001"), None);
    }
}

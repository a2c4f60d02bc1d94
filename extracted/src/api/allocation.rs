//! The batch-allocation rules ("cosmic python" domain), free of storage and HTTP — the
//! monolith's rules, re-implemented here (the service never links the monolith).
//!
//! A batch is stock of one SKU, either in the warehouse (`eta == None`) or on its way. An order
//! line is allocated to the first batch that can take it whole: warehouse stock first, then
//! shipments by earliest eta (ties broken by reference, so the choice is deterministic). When a
//! batch shrinks, the most recently allocated lines are released until what is left fits.

use serde::{Deserialize, Serialize};
use time::Date;

/// One line of an order to allocate: `qty` units of `sku` for `orderid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderLine {
    pub(crate) orderid: String,
    pub(crate) sku: String,
    pub(crate) qty: i64,
}

/// A batch of stock and the lines allocated to it, oldest allocation first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) reference: String,
    pub(crate) sku: String,
    /// Units bought for this batch.
    pub(crate) purchased: i64,
    /// When a shipment arrives; `None` means it is in the warehouse now.
    pub(crate) eta: Option<Date>,
    /// Allocated lines in allocation order (deallocation pops from the end).
    pub(crate) allocations: Vec<OrderLine>,
}

impl Batch {
    /// Units already promised to order lines.
    pub(crate) fn allocated(&self) -> i64 {
        self.allocations.iter().map(|line| line.qty).sum()
    }

    /// Units still free; negative only transiently while the batch shrinks.
    pub(crate) fn available(&self) -> i64 {
        self.purchased - self.allocated()
    }

    /// Whether `line` fits in this batch.
    pub(crate) fn can_allocate(&self, line: &OrderLine) -> bool {
        self.sku == line.sku && self.available() >= line.qty
    }

    /// Set the purchased quantity and release the newest lines until the rest fits; returns
    /// the released lines, newest first.
    pub(crate) fn change_quantity(&mut self, purchased: i64) -> Vec<OrderLine> {
        self.purchased = purchased;
        let mut released = Vec::new();
        while self.available() < 0 {
            match self.allocations.pop() {
                Some(line) => released.push(line),
                None => break,
            }
        }
        released
    }
}

/// Why no batch was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AllocationError {
    /// No batch has ever held this SKU.
    #[error("Invalid sku {0}")]
    InvalidSku(String),
    /// Batches exist, but none has room for the whole line.
    #[error("out of stock for sku {sku}")]
    OutOfStock { sku: String },
}

/// Choose the batch for `line`: warehouse stock first, then the earliest shipment.
pub(crate) fn choose<'a>(
    batches: &'a [Batch],
    line: &OrderLine,
) -> Result<&'a Batch, AllocationError> {
    if !batches.iter().any(|batch| batch.sku == line.sku) {
        return Err(AllocationError::InvalidSku(line.sku.clone()));
    }
    batches
        .iter()
        .filter(|batch| batch.can_allocate(line))
        .min_by(|a, b| {
            (a.eta.is_some(), a.eta, &a.reference).cmp(&(b.eta.is_some(), b.eta, &b.reference))
        })
        .ok_or_else(|| AllocationError::OutOfStock {
            sku: line.sku.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn line(orderid: &str, sku: &str, qty: i64) -> OrderLine {
        OrderLine {
            orderid: orderid.into(),
            sku: sku.into(),
            qty,
        }
    }

    fn batch(reference: &str, sku: &str, purchased: i64, eta: Option<Date>) -> Batch {
        Batch {
            reference: reference.into(),
            sku: sku.into(),
            purchased,
            eta,
            allocations: Vec::new(),
        }
    }

    #[test]
    fn prefers_warehouse_stock_to_shipments() {
        let batches = [
            batch("ship", "LAMP", 100, Some(date!(2026 - 01 - 02))),
            batch("stock", "LAMP", 100, None),
        ];
        assert_eq!(
            choose(&batches, &line("o1", "LAMP", 10)).unwrap().reference,
            "stock"
        );
    }

    #[test]
    fn prefers_earliest_shipment_then_reference() {
        let batches = [
            batch("later", "LAMP", 100, Some(date!(2026 - 03 - 01))),
            batch("b-soon", "LAMP", 100, Some(date!(2026 - 02 - 01))),
            batch("a-soon", "LAMP", 100, Some(date!(2026 - 02 - 01))),
        ];
        assert_eq!(
            choose(&batches, &line("o1", "LAMP", 10)).unwrap().reference,
            "a-soon"
        );
    }

    #[test]
    fn skips_batches_too_small_or_for_other_skus() {
        let batches = [
            batch("small", "LAMP", 5, None),
            batch("other", "CHAIR", 100, None),
            batch("ship", "LAMP", 50, Some(date!(2026 - 02 - 01))),
        ];
        assert_eq!(
            choose(&batches, &line("o1", "LAMP", 10)).unwrap().reference,
            "ship"
        );
    }

    #[test]
    fn reports_out_of_stock_and_invalid_sku() {
        let batches = [batch("small", "LAMP", 5, None)];
        assert_eq!(
            choose(&batches, &line("o1", "LAMP", 10)),
            Err(AllocationError::OutOfStock { sku: "LAMP".into() })
        );
        assert_eq!(
            choose(&batches, &line("o1", "SOFA", 1)),
            Err(AllocationError::InvalidSku("SOFA".into()))
        );
    }

    #[test]
    fn shrinking_releases_newest_lines_until_it_fits() {
        let mut b = batch("b", "LAMP", 20, None);
        b.allocations = vec![
            line("o1", "LAMP", 10),
            line("o2", "LAMP", 5),
            line("o3", "LAMP", 5),
        ];
        let released = b.change_quantity(12);
        assert_eq!(released, vec![line("o3", "LAMP", 5), line("o2", "LAMP", 5)]);
        assert_eq!(b.available(), 2);
        assert!(b.change_quantity(50).is_empty());
    }
}

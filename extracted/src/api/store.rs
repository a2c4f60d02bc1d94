//! The service's data and every query its handlers and event appliers need, written once
//! over the `storage` interface (SQLite or PostgreSQL).
//!
//! Each public operation is one transaction. The `*_in` functions of the submodules take an
//! open [`Tx`] so that event application can combine several steps (and the
//! `processed_events` record) into one all-or-nothing change.

pub(crate) mod batches;
pub(crate) mod ids;
pub(crate) mod orders;
pub(crate) mod products;
pub(crate) mod projection;
mod seed;

use crate::misc::clock::Clock;

use super::storage::{Database, Db, DbError, Tx};

pub(crate) use batches::{BatchError, BatchRecord, format_eta, parse_eta};
pub(crate) use orders::{Order, OrderError, OrderItem};
pub(crate) use products::{Product, ProductUpdate};

/// The database and the clock that stamps what is written to it.
pub(crate) struct Store {
    db: Db,
    clock: Clock,
}

impl Store {
    /// Connect, migrate, and seed an empty database with the monolith's seed data.
    pub(crate) async fn open(database: &Database, clock: Clock) -> Result<Store, DbError> {
        let db = Db::open(database).await?;
        let store = Store { db, clock };
        seed::seed_if_empty(&store).await?;
        Ok(store)
    }

    /// Timestamps and whether ids are random.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Begin a transaction (for changes made of several steps).
    pub(crate) async fn begin(&self) -> Result<Tx, DbError> {
        self.db.begin().await
    }
}

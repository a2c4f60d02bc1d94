//! The shop's SQLite database: schema, seed data, and every query the handlers need.
//!
//! One connection behind a `std::sync::Mutex`: each query is short and synchronous, so a
//! handler locks, queries and unlocks without ever holding the lock across an `.await`.
//! Multi-step changes (checkout, allocation, deallocation) run in one transaction.
//!
//! Generated ids come from here too: random when the clock varies, otherwise from a
//! `counters` table, so they stay deterministic and unique even on a reopened file database.

mod batches;
mod carts;
mod images;
mod orders;
mod products;
mod schema;
mod seed;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use crate::clock::Clock;
use crate::error::Error;

pub(crate) use batches::{BatchError, BatchRecord, format_eta, parse_eta};
pub(crate) use orders::{Order, OrderError};
pub(crate) use products::{Product, ProductUpdate};

/// The database and the clock that stamps what is written to it.
pub(crate) struct Store {
    /// The one connection; see the module docs for why a mutex is enough.
    conn: Mutex<Connection>,
    /// Timestamps for `created_at`/`updated_at`, and whether ids are random.
    clock: Clock,
}

/// What kind of id to generate, which decides its prefix and length.
#[derive(Debug, Clone, Copy)]
enum IdKind {
    Order,
    Session,
    Image,
}

impl Store {
    /// Open the file (or a fresh in-memory database), apply the schema, and seed it if empty.
    pub(crate) fn open(path: Option<&Path>, clock: Clock) -> Result<Store, Error> {
        let conn = match path {
            Some(path) => {
                let open_error = |source| Error::OpenDatabase {
                    path: path.to_path_buf(),
                    source,
                };
                let conn = Connection::open(path).map_err(open_error)?;
                conn.execute_batch(schema::SCHEMA).map_err(open_error)?;
                conn
            }
            None => {
                let conn = Connection::open_in_memory()?;
                conn.execute_batch(schema::SCHEMA)?;
                conn
            }
        };
        let store = Store {
            conn: Mutex::new(conn),
            clock,
        };
        seed::seed_if_empty(&store)?;
        Ok(store)
    }

    /// The connection; a panic in another request does not make the data unusable.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new id: random when the clock varies, else the next value of a per-kind counter.
    fn next_id(&self, conn: &Connection, kind: IdKind) -> rusqlite::Result<String> {
        let (prefix, random_len) = match kind {
            IdKind::Order => ("ord", 12),
            IdKind::Session => ("sess", 32),
            IdKind::Image => ("img", 12),
        };
        if let Some(hex) = self.clock.random_hex(random_len) {
            return Ok(format!("{prefix}-{hex}"));
        }
        let n: i64 = conn.query_row(
            "INSERT INTO counters (name, value) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1
             RETURNING value",
            [prefix],
            |row| row.get(0),
        )?;
        Ok(match kind {
            IdKind::Image => format!("{prefix}-{n}"),
            IdKind::Order | IdKind::Session => format!("{prefix}-{n:06}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_database_is_seeded_once_and_ids_continue() {
        let dir = std::env::temp_dir().join(format!("legacy-shim-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shop.db");
        let first = Store::open(Some(&path), Clock::new(false)).unwrap();
        let products = first.products().unwrap().len();
        let id = {
            let conn = first.conn();
            first.next_id(&conn, IdKind::Order).unwrap()
        };
        drop(first);
        let again = Store::open(Some(&path), Clock::new(false)).unwrap();
        assert_eq!(again.products().unwrap().len(), products);
        let next = {
            let conn = again.conn();
            again.next_id(&conn, IdKind::Order).unwrap()
        };
        assert_ne!(id, next);
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = std::env::temp_dir().join(format!("legacy-shim-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("junk.db");
        std::fs::write(&path, b"this is not sqlite, not at all, no no no no no no no no no no no no no no no no no no no no no no no no no no no no no no no no no no no").unwrap();
        let err = Store::open(Some(&path), Clock::new(false)).err().unwrap();
        assert!(matches!(err, Error::OpenDatabase { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stable_ids_are_counters() {
        let store = Store::open(None, Clock::new(false)).unwrap();
        let conn = store.conn();
        assert_eq!(store.next_id(&conn, IdKind::Image).unwrap(), "img-4");
        assert_eq!(
            store.next_id(&conn, IdKind::Session).unwrap(),
            "sess-000001"
        );
    }
}

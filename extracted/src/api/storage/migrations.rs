//! Versioned schema migrations: SQL files embedded in the binary, one per version and engine,
//! applied in order at start inside one transaction and recorded in `schema_migrations`.
//! Starting again applies nothing; a database migrated by a newer build is refused.
//!
//! To change the schema, add a file pair `migrations/{sqlite,postgres}/NNNN_name.sql` and a
//! line to [`MIGRATIONS`]; never edit a file that has been released.

use std::collections::BTreeSet;

use super::{Backend, Db, DbError};
use crate::misc::clock::rfc3339;

/// One schema version, in both dialects.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every version, oldest first.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "shop",
        sqlite: include_str!("migrations/sqlite/0001_shop.sql"),
        postgres: include_str!("migrations/postgres/0001_shop.sql"),
    },
    Migration {
        version: 2,
        name: "events",
        sqlite: include_str!("migrations/sqlite/0002_events.sql"),
        postgres: include_str!("migrations/postgres/0002_events.sql"),
    },
];

/// Bring the schema up to the newest version this build knows.
pub(super) async fn apply(db: &Db) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    tx.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )
    .await?;
    if tx.backend() == Backend::Postgres {
        // Two services starting at once on one database: the second waits, then sees it done.
        tx.batch("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
            .await?;
    }
    let applied = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.int(0))
        .collect::<Result<BTreeSet<i64>, _>>()?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(&found) = applied.last() {
        if found > known {
            return Err(DbError::TooNew { found, known });
        }
    }
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        let sql = match tx.backend() {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        tx.batch(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[
                migration.version.into(),
                migration.name.into(),
                rfc3339(time::OffsetDateTime::now_utc()).into(),
            ],
        )
        .await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied a schema migration"
        );
    }
    tx.commit().await
}

/// The newest schema version this build knows (for tests).
#[cfg(test)]
pub(super) fn newest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

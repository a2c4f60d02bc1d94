//! The storage interface, on embedded SQLite (memory and file) and on the real PostgreSQL
//! server (a throwaway schema per test): values, placeholders, transactions, migrations and
//! seeding behave the same on both.

use std::path::PathBuf;

use super::*;
use crate::api::store::Store;
use crate::api::test_support::PgSchema;
use crate::misc::clock::Clock;

/// A SQLite file in a folder of its own, removed at the end.
struct TempFile(PathBuf);

impl TempFile {
    fn new() -> TempFile {
        let dir = std::env::temp_dir().join(format!("api-storage-{}", uuid::Uuid::new_v4()));
        TempFile(dir.join("api.db"))
    }

    fn database(&self) -> Database {
        Database::Sqlite(Some(self.0.clone()))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn count(tx: &mut Tx, sql: &str) -> i64 {
    tx.query_opt(sql, &[])
        .await
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap()
}

/// Values, `$n` placeholders (out of order, repeated), `RETURNING` and null.
async fn values_and_placeholders(database: Database) {
    let db = Db::open(&database).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    tx.batch("CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, note TEXT)")
        .await
        .unwrap();
    let rows = tx
        .query(
            "INSERT INTO t (id, name, note) VALUES ($1, $2, $3) RETURNING id, name, note",
            &[7.into(), "seven".into(), Value::Null],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![Row(vec![
            Value::Int(7),
            Value::Text("seven".into()),
            Value::Null
        ])]
    );
    let found = tx
        .query(
            "SELECT id FROM t WHERE name = $2 AND id = $1 AND id + 0 = $1",
            &[7.into(), "seven".into()],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].int(0).unwrap(), 7);
    assert!(found[0].text(0).is_err());
    assert_eq!(
        tx.execute(
            "UPDATE t SET note = $2 WHERE id = $1",
            &[7.into(), "x".into()]
        )
        .await
        .unwrap(),
        1
    );
    tx.commit().await.unwrap();
}

/// A transaction dropped without commit, or broken by an error, changes nothing.
async fn abandoned_transactions_roll_back(database: Database) {
    let db = Db::open(&database).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    tx.batch("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    {
        let mut tx = db.begin().await.unwrap();
        tx.execute("INSERT INTO t (id) VALUES ($1)", &[1.into()])
            .await
            .unwrap();
    }
    {
        let mut tx = db.begin().await.unwrap();
        tx.execute("INSERT INTO t (id) VALUES ($1)", &[2.into()])
            .await
            .unwrap();
        assert!(
            tx.execute("INSERT INTO nowhere VALUES (1)", &[])
                .await
                .is_err()
        );
    }
    let mut tx = db.begin().await.unwrap();
    assert_eq!(count(&mut tx, "SELECT COUNT(*) FROM t").await, 0);
    tx.commit().await.unwrap();
}

/// Migrations are recorded and applied once; a newer database is refused; the seed is
/// written once.
async fn migrations_and_seed_apply_once(database: Database) {
    for _ in 0..2 {
        let store = Store::open(&database, Clock::new(false)).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let versions = count(&mut tx, "SELECT COUNT(*) FROM schema_migrations").await;
        assert_eq!(versions, migrations::newest());
        assert_eq!(count(&mut tx, "SELECT COUNT(*) FROM products").await, 12);
        assert_eq!(count(&mut tx, "SELECT COUNT(*) FROM orders").await, 2);
        assert_eq!(count(&mut tx, "SELECT COUNT(*) FROM batches").await, 5);
        tx.commit().await.unwrap();
    }
    let db = Db::open(&database).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    tx.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future', 'x')",
        &[999.into()],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    drop(db);
    match Db::open(&database).await {
        Err(DbError::TooNew { found: 999, known }) => assert_eq!(known, migrations::newest()),
        other => panic!("expected TooNew, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn sqlite_values_and_placeholders() {
    values_and_placeholders(Database::default()).await;
}

#[tokio::test]
async fn sqlite_abandoned_transactions_roll_back() {
    abandoned_transactions_roll_back(Database::default()).await;
}

#[tokio::test]
async fn sqlite_file_migrations_and_seed_apply_once() {
    let file = TempFile::new();
    migrations_and_seed_apply_once(file.database()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_values_and_placeholders() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    values_and_placeholders(schema.database()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_abandoned_transactions_roll_back() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    abandoned_transactions_roll_back(schema.database()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_and_seed_apply_once() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    migrations_and_seed_apply_once(schema.database()).await;
}

#[test]
fn database_settings_parse() {
    assert_eq!("sqlite::memory:".parse(), Ok(Database::Sqlite(None)));
    assert_eq!(
        "sqlite:data/api.db".parse(),
        Ok(Database::Sqlite(Some(PathBuf::from("data/api.db"))))
    );
    assert_eq!(
        "shop.db".parse(),
        Ok(Database::Sqlite(Some(PathBuf::from("shop.db"))))
    );
    assert_eq!(
        "postgres://root@127.0.0.1:5432/test".parse(),
        Ok(Database::Postgres {
            url: "postgres://root@127.0.0.1:5432/test".into(),
            schema: None
        })
    );
    assert!("sqlite:".parse::<Database>().is_err());
}

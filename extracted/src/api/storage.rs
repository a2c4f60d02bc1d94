//! The API service's own storage: one small SQL interface over embedded SQLite (the default)
//! and PostgreSQL (chosen by `--database postgres://…`).
//!
//! Everything above this module (`store`) is written once, as SQL both engines accept, with
//! `$1, $2, …` placeholders and three kinds of value ([`Value`]: null, 64-bit integer, text).
//! Each backend keeps one connection behind an async mutex: a [`Tx`] holds it from `BEGIN` to
//! `COMMIT`, so transactions never interleave and every change is all-or-nothing. A `Tx`
//! dropped without `commit` is rolled back when the connection is next taken.
//!
//! The schema is versioned (`migrations`): SQL files embedded in the binary, applied at start
//! in order, each recorded in `schema_migrations`, so starting again applies nothing.

mod migrations;
mod postgres;
mod sqlite;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// Where the service keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// Embedded SQLite: a file (created if missing), or a fresh in-memory database (`None`).
    Sqlite(Option<PathBuf>),
    /// A PostgreSQL server: a `postgres://user@host:port/dbname` URL, and optionally a schema
    /// of its own (created if missing) so several services or test runs can share a database.
    Postgres {
        /// The connection URL (libpq style).
        url: String,
        /// The schema to create and put first on the search path.
        schema: Option<String>,
    },
}

impl Default for Database {
    /// A fresh in-memory SQLite database.
    fn default() -> Self {
        Database::Sqlite(None)
    }
}

impl FromStr for Database {
    type Err = String;

    /// `sqlite::memory:`, `sqlite:PATH` (or a bare path), or `postgres://…`/`postgresql://…`.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Database::Postgres {
                url: text.to_owned(),
                schema: None,
            });
        }
        let path = text.strip_prefix("sqlite:").unwrap_or(text);
        match path {
            "" => Err(
                "give `sqlite::memory:`, `sqlite:PATH` or a `postgres://user@host:port/db` URL"
                    .to_owned(),
            ),
            ":memory:" => Ok(Database::Sqlite(None)),
            path => Ok(Database::Sqlite(Some(PathBuf::from(path)))),
        }
    }
}

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite refused a statement or could not open the file.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server refused a statement, or the connection failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A result column held another kind of value than the code expects (a schema mismatch).
    #[error("column {column} holds {found}, expected {wanted}")]
    Column {
        /// Zero-based column index.
        column: usize,
        /// What the code expected.
        wanted: &'static str,
        /// What the row had.
        found: &'static str,
    },
    /// A PostgreSQL result column of a type the service does not read.
    #[error("PostgreSQL column type {0} is not one the service reads (bigint or text)")]
    ColumnType(String),
    /// The schema name given for PostgreSQL is not a plain identifier.
    #[error("schema name {0:?} must be 1-63 lowercase letters, digits or '_'")]
    SchemaName(String),
    /// The database was migrated by a newer version of the service.
    #[error(
        "the database has schema version {found}, newer than this service knows ({known}); \
         run the newer service or point --database elsewhere"
    )]
    TooNew {
        /// The newest version recorded in `schema_migrations`.
        found: i64,
        /// The newest version this build embeds.
        known: i64,
    },
}

/// One SQL value: all the service stores is integers, text and null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row(Vec<Value>);

impl Row {
    fn at(&self, column: usize) -> &Value {
        self.0.get(column).unwrap_or(&Value::Null)
    }

    /// The integer in `column`.
    pub(crate) fn int(&self, column: usize) -> Result<i64, DbError> {
        match self.at(column) {
            Value::Int(n) => Ok(*n),
            other => Err(DbError::Column {
                column,
                wanted: "an integer",
                found: other.kind(),
            }),
        }
    }

    /// The text in `column`.
    pub(crate) fn text(&self, column: usize) -> Result<String, DbError> {
        match self.at(column) {
            Value::Text(text) => Ok(text.clone()),
            other => Err(DbError::Column {
                column,
                wanted: "text",
                found: other.kind(),
            }),
        }
    }

    /// The text in `column`, or `None` for null.
    pub(crate) fn opt_text(&self, column: usize) -> Result<Option<String>, DbError> {
        match self.at(column) {
            Value::Null => Ok(None),
            _ => self.text(column).map(Some),
        }
    }
}

/// Which engine a database runs on (the migrations differ in their DDL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The one connection, of either engine.
enum Conn {
    Sqlite(rusqlite::Connection),
    /// Boxed: the client, its config and statement cache are large beside a SQLite handle.
    Postgres(Box<postgres::Pg>),
}

/// The connection and whether a transaction is open on it.
struct Session {
    conn: Conn,
    /// A `Tx` began and was dropped without `commit`: roll back before the next one.
    open: bool,
}

impl Session {
    async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match &mut self.conn {
            Conn::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Conn::Postgres(pg) => pg.batch(sql).await,
        }
    }

    /// End an abandoned transaction (SQLite may already have ended it after an error).
    async fn rollback(&mut self) -> Result<(), DbError> {
        match &mut self.conn {
            Conn::Sqlite(conn) if conn.is_autocommit() => {}
            Conn::Sqlite(conn) => conn.execute_batch("ROLLBACK")?,
            Conn::Postgres(pg) => pg.batch("ROLLBACK").await?,
        }
        self.open = false;
        Ok(())
    }
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub(crate) struct Db {
    session: Arc<Mutex<Session>>,
    backend: Backend,
}

impl Db {
    /// Connect (or open the file), then bring the schema up to date.
    pub(crate) async fn open(database: &Database) -> Result<Db, DbError> {
        let (conn, backend) = match database {
            Database::Sqlite(path) => (
                Conn::Sqlite(sqlite::open(path.as_deref())?),
                Backend::Sqlite,
            ),
            Database::Postgres { url, schema } => (
                Conn::Postgres(Box::new(
                    postgres::Pg::connect(url, schema.as_deref()).await?,
                )),
                Backend::Postgres,
            ),
        };
        let db = Db {
            session: Arc::new(Mutex::new(Session { conn, open: false })),
            backend,
        };
        migrations::apply(&db).await?;
        Ok(db)
    }

    /// Begin a transaction; it holds the connection until it is committed or dropped.
    pub(crate) async fn begin(&self) -> Result<Tx, DbError> {
        let mut session = Arc::clone(&self.session).lock_owned().await;
        if let Conn::Postgres(pg) = &mut session.conn {
            if pg.reconnect_if_closed().await? {
                session.open = false;
            }
        }
        if session.open {
            session.rollback().await?;
        }
        session.batch("BEGIN").await?;
        session.open = true;
        Ok(Tx {
            session,
            backend: self.backend,
        })
    }
}

/// An open transaction: every statement of one change, then `commit`.
pub(crate) struct Tx {
    session: OwnedMutexGuard<Session>,
    backend: Backend,
}

impl Tx {
    /// Which engine this is.
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// Run a statement that returns rows (a `SELECT`, or a change with `RETURNING`).
    pub(crate) async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match &mut self.session.conn {
            Conn::Sqlite(conn) => sqlite::query(conn, sql, params),
            Conn::Postgres(pg) => pg.query(sql, params).await,
        }
    }

    /// The first row of a query, if any.
    pub(crate) async fn query_opt(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Run a statement that returns no rows; the number of rows it changed.
    pub(crate) async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match &mut self.session.conn {
            Conn::Sqlite(conn) => sqlite::execute(conn, sql, params),
            Conn::Postgres(pg) => pg.execute(sql, params).await,
        }
    }

    /// Run several `;`-separated statements without parameters (migrations).
    pub(crate) async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.session.batch(sql).await
    }

    /// Make the changes permanent and release the connection.
    pub(crate) async fn commit(mut self) -> Result<(), DbError> {
        self.session.batch("COMMIT").await?;
        self.session.open = false;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;

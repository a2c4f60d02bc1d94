//! The SQLite backend: one `rusqlite` connection, statements cached, `$n` placeholders bound
//! by name (SQLite numbers `$1`-style parameters in order of first use, not by their digits).

use std::path::Path;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection};

use super::{DbError, Row, Value};

/// Open the file (created if missing) or a fresh in-memory database, with foreign keys on.
pub(super) fn open(path: Option<&Path>) -> Result<Connection, DbError> {
    let conn = match path {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                // A missing folder would make SQLite's "unable to open" error hard to read.
                let _ = std::fs::create_dir_all(dir);
            }
            Connection::open(path)?
        }
        None => Connection::open_in_memory()?,
    };
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    Ok(conn)
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::from(rusqlite::types::Null),
            Value::Int(n) => ToSqlOutput::from(*n),
            Value::Text(text) => ToSqlOutput::from(text.as_str()),
        })
    }
}

/// Prepare (from the cache) and bind `$1…$n`.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[Value],
) -> Result<CachedStatement<'c>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    for (n, value) in params.iter().enumerate() {
        if let Some(index) = stmt.parameter_index(&format!("${}", n + 1))? {
            stmt.raw_bind_parameter(index, value)?;
        }
    }
    Ok(stmt)
}

/// Run a statement and read every row it returns.
pub(super) fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
    let mut stmt = prepare(conn, sql, params)?;
    let columns = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for column in 0..columns {
            values.push(match row.get_ref(column)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::Int(n),
                ValueRef::Text(bytes) => Value::Text(String::from_utf8_lossy(bytes).into_owned()),
                ValueRef::Real(_) | ValueRef::Blob(_) => {
                    return Err(DbError::Column {
                        column,
                        wanted: "an integer or text",
                        found: "a real or blob",
                    });
                }
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

/// Run a statement that returns no rows.
pub(super) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64, DbError> {
    let mut stmt = prepare(conn, sql, params)?;
    Ok(stmt.raw_execute()? as u64)
}

//! Shared test fixtures: stable services on SQLite or on a throwaway PostgreSQL schema, and
//! request helpers (the misc service's `call`/`get`, plus JSON requests).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;

use super::storage::Database;
use super::{Api, Options, router};

pub(crate) use crate::misc::test_support::{Reply, call, get};

/// Where the test PostgreSQL server is (trust auth); `API_TEST_POSTGRES` overrides.
const POSTGRES_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// Stable options (fixed clock, counter ids) on this database.
pub(crate) fn stable(database: Database) -> Options {
    Options {
        vary: false,
        database,
        events: None,
    }
}

/// A stable service's state on a fresh in-memory SQLite database.
pub(crate) async fn stable_api() -> Api {
    Api::open(&stable(Database::default())).await.unwrap()
}

/// A stable service on a fresh in-memory SQLite database.
pub(crate) async fn app() -> Router {
    router(stable_api().await)
}

/// A JSON request with the right content type.
pub(crate) fn json_request(method: &str, uri: &str, body: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A schema of its own on the test PostgreSQL server, dropped (with everything in it) when
/// this is dropped, even after a failed assertion. Tests using it run on a multi-thread
/// runtime: the drop blocks one thread while the test's own connections (driven by tasks
/// of that runtime) close and release their locks.
pub(crate) struct PgSchema {
    url: String,
    schema: String,
}

impl PgSchema {
    /// A fresh schema, or `None` (test skipped with a note) when no server is reachable.
    /// In CI (`CI` set) a missing server fails the test instead.
    pub(crate) fn new() -> Option<PgSchema> {
        let url = std::env::var("API_TEST_POSTGRES").unwrap_or_else(|_| POSTGRES_URL.to_owned());
        let addr: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs PostgreSQL at {url} (this test never skips there)"
            );
            eprintln!("note: no PostgreSQL at {url}; test skipped");
            return None;
        }
        let schema = format!("api_test_{}", uuid::Uuid::new_v4().simple());
        Some(PgSchema { url, schema })
    }

    /// The database setting that uses this schema.
    pub(crate) fn database(&self) -> Database {
        Database::Postgres {
            url: self.url.clone(),
            schema: Some(self.schema.clone()),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // A runtime of its own: drop may run inside (or outside) the test's runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                    ))
                    .await
                    .map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "note: could not drop test schema {}: {dropped:?}",
                self.schema
            );
        }
    }
}

//! `POST /api/imports`: take a request body of any size, frame by frame, and answer with its
//! length and SHA-256 — the shop's stand-in for a bulk import. The body is never held whole.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Api;
use super::error::Problem;

/// What an import answers.
#[derive(Debug, Serialize)]
pub(crate) struct Imported {
    bytes: u64,
    sha256: String,
    received_at: String,
}

/// `POST /api/imports` → `{"bytes": n, "sha256": "hex", "received_at": …}`.
pub(crate) async fn import(State(api): State<Api>, body: Body) -> Result<Json<Imported>, Problem> {
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let chunk = frame.map_err(|err| {
            Problem::bad_request("bad_body", format!("the request body broke off: {err}"))
        })?;
        bytes += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok(Json(Imported {
        bytes,
        sha256: hex::encode(hasher.finalize()),
        received_at: api.clock().timestamp(),
    }))
}

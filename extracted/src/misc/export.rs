//! `GET /misc/export.csv[?rows=N]`: products and order lines as CSV, streamed in chunks
//! (no `Content-Length`, so HTTP/1.1 sends it chunked), as the monolith does. `rows=N`
//! cycles through the records to make exactly N data rows, capped at `MAX_ROWS`.
//!
//! The records come from the service's catalogue — the monolith's seed with the orders and
//! product edits its events reported applied (`crate::worker::orders`) — so the export
//! matches once the events of the monolith's writes are in.

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::Deserialize;

use super::Service;
use super::catalogue::Records;
use super::clock::rfc3339;
use super::error::Problem;

/// The most rows `?rows=` can ask for; larger values are capped.
pub(crate) const MAX_ROWS: u64 = 200_000;
/// Data rows per body chunk.
const ROWS_PER_CHUNK: u64 = 256;
/// The header row.
const HEADER: &str = "row,record,key,name,quantity,price_cents,currency,timestamp\r\n";

/// The query string.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    rows: Option<String>,
}

/// `GET /misc/export.csv` → `text/csv` attachment, streamed; 400 for a bad `rows`.
pub(crate) async fn csv(
    State(service): State<Service>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|r| Problem::bad_request("bad_query", r.body_text()))?;
    let records: Arc<[String]> = records(&service.catalogue().read()).into();
    let total = match query.rows.as_deref() {
        None => records.len() as u64,
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| {
                Problem::bad_request(
                    "bad_rows",
                    format!("rows must be a whole number, got {text:?}"),
                )
            })?
            .min(MAX_ROWS),
    };
    let total = if records.is_empty() { 0 } else { total };

    // First the header line, then chunks of rows, each rendered only when the client reads.
    let chunks = stream::unfold(None::<u64>, move |next| {
        let records = Arc::clone(&records);
        async move {
            let Some(start) = next else {
                let header = Bytes::from_static(HEADER.as_bytes());
                return Some((Ok::<_, Infallible>(header), Some(0)));
            };
            if start >= total {
                return None;
            }
            let end = (start + ROWS_PER_CHUNK).min(total);
            let mut chunk = String::with_capacity(((end - start) * 64) as usize);
            for n in start..end {
                let record = &records[(n % records.len() as u64) as usize];
                let _ = write!(chunk, "{},{record}\r\n", n + 1);
            }
            Some((Ok(Bytes::from(chunk)), Some(end)))
        }
    })
    // Body wrappers (gzip) may poll again after the end; a fused stream allows that.
    .fuse();
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"export.csv\""),
            (CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

/// Every record as a CSV line without the row number: products, then order lines.
fn records(catalogue: &Records) -> Vec<String> {
    let products = catalogue.products().iter().map(|p| {
        line(&[
            "product",
            &p.sku,
            &p.name,
            &p.stock.to_string(),
            &p.price_cents.to_string(),
            p.currency,
            &rfc3339(p.updated_at),
        ])
    });
    let order_lines = catalogue.orders().iter().flat_map(|order| {
        order.lines.iter().map(move |item| {
            line(&[
                "order",
                &order.id,
                &item.name,
                &item.quantity.to_string(),
                &item.price_cents.to_string(),
                order.currency,
                &rfc3339(order.created_at),
            ])
        })
    });
    products.chain(order_lines).collect()
}

/// Fields joined with commas, quoted (RFC 4180) when they hold a comma, quote or newline.
fn line(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|field| {
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                (*field).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::line;
    use crate::misc::test_support::{get, router};

    #[test]
    fn quotes_fields_that_need_it() {
        assert_eq!(
            line(&["a", "b,c", "say \"hi\""]),
            "a,\"b,c\",\"say \"\"hi\"\"\""
        );
    }

    #[tokio::test]
    async fn exports_every_record_once_by_default() {
        let reply = get(&router(), "/misc/export.csv").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), "text/csv; charset=utf-8");
        assert_eq!(
            reply.header("content-disposition"),
            "attachment; filename=\"export.csv\""
        );
        assert!(reply.headers.get("content-length").is_none());
        let text = reply.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "row,record,key,name,quantity,price_cents,currency,timestamp"
        );
        assert_eq!(lines.len(), 1 + 12 + 3);
        assert!(
            lines.contains(&"6,product,GREEN-SOFA,Green Sofa,3,89900,USD,2026-01-01T00:00:00Z")
        );
        assert!(lines.contains(&"13,order,ord-000001,Ceramic Mug,4,1200,USD,2026-01-01T00:00:00Z"));
    }

    #[tokio::test]
    async fn large_exports_stream_in_many_chunks_and_are_capped() {
        let app = router();
        let request = Request::get("/misc/export.csv?rows=5000")
            .body(Body::empty())
            .unwrap();
        let mut body = app.clone().oneshot(request).await.unwrap().into_body();
        let (mut frames, mut text) = (0, String::new());
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                frames += 1;
                text.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
        assert!(frames > 10, "{frames} frames");
        assert_eq!(text.lines().count(), 5001);
        let capped = get(&app, "/misc/export.csv?rows=999999999").await;
        assert_eq!(capped.text().lines().count() as u64, super::MAX_ROWS + 1);
        assert_eq!(
            get(&app, "/misc/export.csv?rows=-1").await.status,
            StatusCode::BAD_REQUEST
        );
    }
}

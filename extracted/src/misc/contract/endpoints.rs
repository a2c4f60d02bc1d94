//! Health, feeds, the CSV export, the download, the redirect, the WebSocket refusal, the
//! fallbacks and the middleware (request ids, gzip, ETag/304, HEAD).

use axum::http::Method;

use super::{Case, assert_equal_answers, both, candidate, differences, legacy};

fn gzip(case: Case) -> Case {
    case.header("accept-encoding", "gzip")
}

#[tokio::test]
async fn health_redirect_fallbacks_and_request_ids_match() {
    let cases = [
        Case::get("/misc/health"),
        Case::new(Method::HEAD, "/misc/health"),
        gzip(Case::get("/misc/health")),
        gzip(Case::get("/misc/health").header("if-none-match", "*")),
        Case::new(Method::POST, "/misc/health"),
        Case::get("/misc/health").header("x-request-id", "trace-me-42"),
        Case::get("/misc/health").header("x-request-id", "x".repeat(201)),
        Case::get("/misc/health").header("x-request-id", "has space"),
        Case::get("/misc/redirect"),
        Case::new(Method::HEAD, "/misc/redirect"),
        Case::new(Method::PUT, "/misc/redirect"),
        Case::get("/misc/ws"),
        Case::get("/misc/ws")
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        Case::new(Method::POST, "/misc/ws"),
        Case::get("/misc/nope"),
        Case::get("/misc/"),
        Case::get("/misc"),
        Case::new(Method::DELETE, "/misc/nope"),
    ];
    assert_equal_answers(&cases).await;
}

#[tokio::test]
async fn feeds_match_for_every_way_of_addressing_the_site() {
    let mut cases = Vec::new();
    for feed in ["/misc/feed.rss", "/misc/feed.atom"] {
        cases.push(Case::get(feed));
        cases.push(Case::get(feed).header("host", "shop.example:8081"));
        cases.push(
            Case::get(feed)
                .header("host", "127.0.0.1:8081")
                .header("x-forwarded-host", "shop.example, inner.example")
                .header("x-forwarded-proto", "https"),
        );
        cases.push(Case::get(feed).header("host", "bad host<script>"));
        cases.push(gzip(Case::get(feed).header("host", "shop.example")));
        cases.push(Case::new(Method::HEAD, feed).header("host", "shop.example"));
        cases.push(Case::get(feed).header("if-none-match", "*"));
        cases.push(gzip(Case::get(feed).header("if-none-match", "*")));
        cases.push(
            Case::get(feed)
                .header("if-none-match", "*")
                .header("accept-encoding", "br, GZIP;q=0.5"),
        );
        cases.push(Case::new(Method::POST, feed));
    }
    assert_equal_answers(&cases).await;
}

#[tokio::test]
async fn feeds_revalidate_with_the_monolith_etag() {
    let (legacy, candidate) = (legacy(), candidate(false));
    for feed in ["/misc/feed.rss", "/misc/feed.atom"] {
        let first = both(&legacy, &candidate, &Case::get(feed)).await;
        assert!(differences(&first).is_empty(), "{:?}", differences(&first));
        let etag = first.legacy.header("etag").to_owned();
        for tag in [etag.clone(), format!("W/{etag}")] {
            let again = both(
                &legacy,
                &candidate,
                &Case::get(feed).header("if-none-match", tag),
            )
            .await;
            assert_eq!(again.candidate.status, 304);
            assert!(differences(&again).is_empty(), "{:?}", differences(&again));
        }
    }
}

#[tokio::test]
async fn exports_match_row_for_row() {
    let cases = [
        Case::get("/misc/export.csv"),
        Case::get("/misc/export.csv?rows=0"),
        Case::get("/misc/export.csv?rows=5"),
        Case::get("/misc/export.csv?rows=15"),
        Case::get("/misc/export.csv?rows=%2030%20"),
        Case::get("/misc/export.csv?rows=5000"),
        Case::get("/misc/export.csv?rows=250000"),
        gzip(Case::get("/misc/export.csv?rows=1000")),
        gzip(Case::get("/misc/export.csv")),
        Case::new(Method::HEAD, "/misc/export.csv"),
        Case::get("/misc/export.csv?rows=abc"),
        Case::get("/misc/export.csv?rows=-1"),
        Case::get("/misc/export.csv?rows=1.5"),
        Case::get("/misc/export.csv?rows=99999999999999999999999"),
        Case::get("/misc/export.csv?rows=1&rows=2"),
        Case::get("/misc/export.csv").header("if-none-match", "*"),
        gzip(Case::get("/misc/export.csv").header("if-none-match", "*")),
    ];
    assert_equal_answers(&cases).await;
}

#[tokio::test]
async fn downloads_match_byte_for_byte() {
    let cases = [
        Case::get("/misc/download"),
        Case::get("/misc/download?bytes=0"),
        Case::get("/misc/download?bytes=10"),
        Case::get("/misc/download?bytes=65536"),
        Case::get("/misc/download?bytes=200001"),
        gzip(Case::get("/misc/download?bytes=100000")),
        Case::new(Method::HEAD, "/misc/download?bytes=5000"),
        Case::get("/misc/download?bytes=10").header("if-none-match", "\"pattern-251-10\""),
        Case::get("/misc/download?bytes=10").header("if-none-match", "\"pattern-251-11\""),
        gzip(
            Case::get("/misc/download?bytes=5000").header("if-none-match", "\"pattern-251-5000\""),
        ),
        Case::get("/misc/download?bytes=104857600")
            .header("if-none-match", "\"pattern-251-104857600\""),
        Case::get("/misc/download?bytes=104857601"),
        Case::get("/misc/download?bytes=-5"),
        Case::get("/misc/download?bytes=lots"),
        Case::get("/misc/download?bytes=1&bytes=2"),
        Case::new(Method::POST, "/misc/download"),
    ];
    assert_equal_answers(&cases).await;
}

#[tokio::test]
async fn running_clocks_keep_the_same_shapes() {
    let legacy = legacy_shim::app(legacy_shim::Shop::new(legacy_shim::Options::default()).unwrap());
    let candidate = crate::misc::app(crate::misc::Options::default());
    for uri in ["/misc/health", "/misc/currency?from=USD&to=GBP&amount=3.5"] {
        let pair = both(&legacy, &candidate, &Case::get(uri)).await;
        assert_eq!(pair.candidate.status, pair.legacy.status, "{uri}");
        let keys = |reply: &crate::misc::test_support::Reply| -> Vec<String> {
            let text = reply.text();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            // serde_json's map sorts keys; recover the wire order from the text.
            keys.sort_by_key(|k| text.find(&format!("\"{k}\":")));
            keys
        };
        assert_eq!(keys(&pair.candidate), keys(&pair.legacy), "{uri}");
        for reply in [&pair.legacy, &pair.candidate] {
            let id = uuid::Uuid::parse_str(reply.header("x-request-id")).unwrap();
            assert_eq!(id.get_version_num(), 4);
        }
    }
}

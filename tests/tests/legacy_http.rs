//! HTTP conformance of legacy-shim itself, found while comparing it with itself behind the
//! proxy: the proxy relays these answers faithfully, but the answers are wrong at the source.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use system_tests::exchange::{Client, Req, Twins};

/// RFC 9110 §15.4.5: a 304 carries the `ETag` that a 200 to the same request would carry.
/// legacy-shim gzips `/products` for `Accept-Encoding: gzip` and makes that ETag weak
/// (`W/"…"`), but its 304 to the same request (with that ETag in `If-None-Match`) carries the
/// strong `"…"`: the 304 is made inside the gzip layer, so `mark_compressed` never sees it. A
/// cache holding the gzip answer cannot match the 304's validator to it (RFC 9111 §4.3.4).
#[tokio::test]
async fn a_304_to_a_gzip_request_carries_the_etag_its_200_carries() {
    let twins = Twins::start("", &[]).await;
    for client in [
        Client::h1(twins.direct.addr),
        Client::h1(twins.proxy.handle.addr()),
    ] {
        let gzip = Req::get("/products").header("accept-encoding", "gzip");
        let full = client.send(&gzip).await.unwrap();
        assert_eq!(full.header("content-encoding"), "gzip");
        assert!(
            full.header("etag").starts_with("W/\""),
            "{}",
            full.header("etag")
        );
        let again = gzip.clone().header("if-none-match", full.header("etag"));
        let not_modified = client.send(&again).await.unwrap();
        assert_eq!(not_modified.status, 304);
        assert_eq!(
            not_modified.header("etag"),
            full.header("etag"),
            "via {}",
            client.label()
        );
    }
    twins.stop().await;
}

//! The worker against a real monolith (legacy-shim on a loopback port, stable) and the
//! embedded log bus in a temp folder: an upload's thumbnails answer like the monolith's, a
//! second delivery of an event does nothing, and a replay into a fresh store rebuilds it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use image::ImageFormat;
use strangler::config::{BusConfig, BusKind};
use strangler::events::sink::Sink;
use tokio::sync::oneshot;

use super::*;
use crate::misc::test_support::{call, encoded_image};

/// How long the worker may take to handle what was published.
const WITHIN: Duration = Duration::from_secs(20);

/// A stable legacy-shim on a free loopback port; stops when the sender is dropped.
async fn monolith() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = legacy_shim::Options {
        vary: false,
        ..legacy_shim::Options::default()
    };
    tokio::spawn(legacy_shim::serve(listener, options, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Uploads `bytes` to the monolith; returns the 201 answer's JSON.
async fn upload(monolith: SocketAddr, content_type: &str, bytes: Vec<u8>) -> serde_json::Value {
    let reply = reqwest::Client::new()
        .post(format!("http://{monolith}/images"))
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    reply.json().await.unwrap()
}

/// The event the proxy's `emit` rule derives from an upload's answer.
fn uploaded(id: &str, answer: &serde_json::Value) -> Event {
    let mut event = Event::new(
        EVENT_TYPE,
        Some("images-upload"),
        id,
        serde_json::json!({
            "image_id": answer["id"],
            "url": answer["url"],
            "content_type": answer["content_type"],
        }),
    );
    event.id = id.to_owned();
    event
}

fn log_bus() -> BusConfig {
    BusConfig {
        kind: BusKind::Log,
        path: Some("events".into()),
        ..BusConfig::default()
    }
}

fn settings(base: &Path, legacy: SocketAddr, consumer: &str) -> Settings {
    Settings {
        bus: log_bus(),
        base_dir: base.to_owned(),
        legacy_url: format!("http://{legacy}/"),
        consumer: consumer.to_owned(),
    }
}

/// Runs the worker until `done` holds for the store (bounded by [`WITHIN`]), then stops it.
async fn run_until(settings: Settings, store: &PictureStore, done: impl Fn(&PictureStore) -> bool) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(settings, store.clone(), async move {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + WITHIN;
    while !done(store) {
        assert!(
            Instant::now() < deadline,
            "the worker did not finish in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// The same thumbnail request to the monolith and to the misc service.
async fn both(legacy: SocketAddr, misc: &Router, query: &str) -> (Vec<u8>, Vec<u8>, u16) {
    let uri = format!("/misc/thumbnail?{query}");
    let theirs = reqwest::get(format!("http://{legacy}{uri}")).await.unwrap();
    let status = theirs.status().as_u16();
    let theirs = theirs.bytes().await.unwrap().to_vec();
    let ours = call(
        misc,
        axum::http::Request::get(&uri)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ours.status.as_u16(), status, "{uri}");
    (theirs, ours.body.to_vec(), status)
}

#[tokio::test]
async fn uploads_get_the_monoliths_thumbnails_once_each() {
    let (legacy, _stop) = monolith().await;
    let base = tempfile::tempdir().unwrap();
    let store = PictureStore::open(&base.path().join("pictures")).unwrap();
    let misc = crate::misc::app(crate::misc::Options {
        vary: false,
        defect: false,
        pictures: Some(store.clone()),
    });

    // Before the worker: unknown here, 404 like an unknown id at the monolith.
    let png = upload(legacy, "image/png", encoded_image(90, 60, ImageFormat::Png)).await;
    let jpeg = upload(
        legacy,
        "image/jpeg",
        encoded_image(30, 70, ImageFormat::Jpeg),
    )
    .await;
    let ours = call(
        &misc,
        axum::http::Request::get("/misc/thumbnail?image=img-4")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ours.status, 404);

    let sink = Sink::connect(&log_bus(), base.path()).await.unwrap();
    let events = [uploaded("ev-png", &png), uploaded("ev-jpeg", &jpeg)];
    sink.publish(&events).await.unwrap();
    run_until(settings(base.path(), legacy, "thumbs"), &store, |s| {
        s.was_processed("ev-jpeg")
    })
    .await;

    for id in [&png["id"], &jpeg["id"]] {
        let id = id.as_str().unwrap();
        for query in [
            format!("image={id}"),
            format!("image={id}&w=48&h=48"),
            format!("image={id}&w=33&h=100"),
        ] {
            let (theirs, ours, status) = both(legacy, &misc, &query).await;
            assert_eq!(status, 200, "{query}");
            assert!(theirs == ours, "{query}: the thumbnails differ");
        }
    }
    assert!(store.thumbnail("img-4", 128, 128).unwrap().is_some());

    // The same event again, with the monolith gone: handled without a fetch.
    drop(_stop);
    let worker = Worker {
        client: reqwest::Client::new(),
        legacy_url: "http://127.0.0.1:9".into(),
        store: store.clone(),
    };
    assert_eq!(worker.process(&events[0]).await.unwrap(), Outcome::Skipped);
}

#[tokio::test]
async fn a_replay_into_a_fresh_store_rebuilds_the_same_pictures() {
    let (legacy, _stop) = monolith().await;
    let base = tempfile::tempdir().unwrap();
    let first = upload(legacy, "image/png", encoded_image(20, 20, ImageFormat::Png)).await;
    let second = upload(legacy, "image/png", encoded_image(64, 16, ImageFormat::Png)).await;
    let sink = Sink::connect(&log_bus(), base.path()).await.unwrap();
    let events = [
        uploaded("a", &first),
        uploaded("b", &second),
        uploaded("a", &first),
    ];
    sink.publish(&events).await.unwrap();

    let one = PictureStore::open(&base.path().join("one")).unwrap();
    run_until(settings(base.path(), legacy, "one"), &one, |s| {
        s.was_processed("b")
    })
    .await;
    let two = PictureStore::open(&base.path().join("two")).unwrap();
    run_until(settings(base.path(), legacy, "two"), &two, |s| {
        s.was_processed("b")
    })
    .await;
    for id in ["img-4", "img-5"] {
        assert!(one.original(id).unwrap().is_some());
        assert_eq!(one.original(id).unwrap(), two.original(id).unwrap());
        for (w, h) in STANDARD_SIZES {
            assert_eq!(
                one.thumbnail(id, w, h).unwrap(),
                two.thumbnail(id, w, h).unwrap()
            );
        }
    }
}

#[test]
fn events_that_do_not_announce_a_monolith_picture_are_refused() {
    let event = |data: serde_json::Value| Event::new(EVENT_TYPE, None, "c", data);
    assert!(Upload::from_event(&event(serde_json::json!({"url": "/images/x"}))).is_err());
    assert!(
        Upload::from_event(&event(
            serde_json::json!({"image_id": "../x", "url": "/images/x"})
        ))
        .is_err()
    );
    assert!(
        Upload::from_event(&event(
            serde_json::json!({"image_id": "img-4", "url": "http://elsewhere/x"})
        ))
        .is_err()
    );
    assert_eq!(
        Upload::from_event(&event(
            serde_json::json!({"image_id": "img-4", "url": "/images/img-4"})
        )),
        Ok(Upload {
            image_id: "img-4".into(),
            url: "/images/img-4".into(),
            content_type: None,
        })
    );
}

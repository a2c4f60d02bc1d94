//! The migration script as a whole-system test, on NATS: legacy-shim (the monolith), the
//! extracted misc service (with its order consumer and thumbnail worker), API service and UI
//! front, and the proxy in front of them with every route on legacy. A fixed set of shop
//! journeys is recorded as the client sees it — pages, API calls, misc endpoints, and a
//! picture upload followed by its thumbnails; then the misc, API and UI routes move
//! legacy → shadow → canary → extracted through the admin API, and after each step the read
//! journeys answer as recorded and a new upload answers as the first did, with thumbnails
//! byte for byte the monolith's (modulo declared noise: request ids, the new image's id),
//! while a background client sees no failed request during the flips.
//!
//! The bus tells each step (`route.changed`) and carries what the monolith did: the orders
//! (`shop.order.placed`, also for a page checkout, whose order id the rule takes from the
//! 303's `Location` and the consumers complete from the monolith's JSON API) and the uploads
//! (`shop.image.uploaded`, which the thumbnail worker renders ahead of time). The API
//! service's data equals the monolith's — even when an event is delivered twice, and when new
//! consumers rebuild from the stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "migration/bus.rs"]
mod bus;
#[path = "migration/config.rs"]
mod config;
#[path = "migration/journeys.rs"]
mod journeys;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strangler::events::sink::nats::NatsSink;
use system_tests::services::Service;
use system_tests::{Legacy, Proxy, brokers, raw_client, wait};

use bus::{background, caught_up, deliver_again, flip, on_the_bus, projection, steps, wait_for};
use config::{API, DEADLINE, MISC, TOKEN, UI};
use journeys::{
    Seen, assert_as_recorded, assert_same, place_orders, reads, record, thumbnails, unhosted,
};

const ORDER_PLACED: &str = "shop.order.placed";
const IMAGE_UPLOADED: &str = "shop.image.uploaded";

/// Uploads the picture again through the proxy and checks, once the thumbnail worker of
/// `misc` has handled the upload, that the answer and the thumbnails are as recorded.
async fn assert_upload_as_recorded(
    client: &reqwest::Client,
    proxy: &Proxy,
    (sink, bus): (&NatsSink, &strangler::config::BusConfig),
    misc: &str,
    step: &str,
    recorded: &(Seen, Vec<Seen>),
) -> String {
    let (answer, id) = journeys::upload(client, &proxy.url()).await;
    assert_eq!(answer, recorded.0, "after {step}: the upload's answer");
    // The proxy publishes after answering: wait for the event, then for the worker.
    wait::eventually(&format!("{IMAGE_UPLOADED} of {id}"), DEADLINE, || {
        let id = id.clone();
        async move {
            on_the_bus(sink)
                .await
                .iter()
                .any(|e| e.kind == IMAGE_UPLOADED && e.data.value()["image_id"] == id.as_str())
                .then_some(())
        }
    })
    .await;
    caught_up(bus, &format!("{misc}-thumbs"), IMAGE_UPLOADED).await;
    let paths = thumbnails(&id);
    let now = record(client, &proxy.url(), &paths).await;
    assert_same(
        &format!("{step}, thumbnails of {id}"),
        &paths,
        &recorded.1,
        &now,
    );
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_moves_route_by_route_and_no_client_notices() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    let bus = brokers::nats_bus(&nats);
    let client = raw_client();

    // The monolith, the extracted services, and the proxy with every route on legacy.
    let legacy = Legacy::stable().await;
    let (misc_bound, api_bound, ui_bound) = (
        Service::bind().await,
        Service::bind().await,
        Service::bind().await,
    );
    let toml = config::config(
        &legacy.url(),
        &misc_bound.url(),
        &api_bound.url(),
        &ui_bound.url(),
        &bus,
    );
    let proxy = Proxy::start_with_files(&toml, &[("admin-token", TOKEN.as_bytes())]).await;
    let misc_name = brokers::unique("misc");
    let misc = Service::misc_live(
        misc_bound,
        proxy.config_path(),
        misc_name.clone(),
        legacy.url(),
    );
    let api_name = brokers::unique("api");
    let api = Service::api(
        api_bound,
        proxy.config_path(),
        api_name.clone(),
        legacy.url(),
    );
    let ui = Service::ui(ui_bound, proxy.url());
    let sink = NatsSink::connect(&bus).await.unwrap();

    // Record the journeys with every route on legacy: the writes, the reads, and an upload.
    let orders = place_orders(&client, &proxy.url()).await;
    let paths = reads(&orders);
    let recorded = record(&client, &proxy.url(), &paths).await;
    assert!(
        recorded.iter().filter(|s| s.status == 200).count() >= 20,
        "the journeys mostly succeed on legacy: {recorded:#?}"
    );
    let (uploaded, first_image) = journeys::upload(&client, &proxy.url()).await;
    assert_eq!(uploaded.status, 201, "the upload on legacy: {uploaded:?}");
    let first_thumbnails = thumbnails(&first_image);
    let upload_journey = (
        uploaded,
        record(&client, &proxy.url(), &first_thumbnails).await,
    );
    assert!(upload_journey.1.iter().all(|s| s.status == 200));

    // The orders placed on legacy are on the bus — the page checkout's with its id only —
    // and the API service and the misc order consumer catch up on them.
    let placed = wait_for(&sink, ORDER_PLACED, 3).await;
    let ids: Vec<String> = placed
        .iter()
        .map(|e| e.data.value()["order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids, orders,
        "shop.order.placed for each order placed on legacy"
    );
    assert!(
        placed[2].data.value().get("lines").is_none(),
        "the page checkout shows the proxy only the order id: {}",
        placed[2].data
    );
    caught_up(&bus, &api_name, ORDER_PLACED).await;
    caught_up(&bus, &misc_name, ORDER_PLACED).await;
    let monolith = projection(&client, &legacy.url(), &orders).await;
    assert_eq!(
        projection(&client, &api.url(), &orders).await,
        monolith,
        "the API service's data equals the monolith's after consuming its events"
    );

    // The upload is on the bus and the thumbnail worker rendered its thumbnails ahead of time.
    let uploads = wait_for(&sink, IMAGE_UPLOADED, 1).await;
    assert_eq!(uploads[0].data.value()["image_id"], first_image.as_str());
    caught_up(&bus, &format!("{misc_name}-thumbs"), IMAGE_UPLOADED).await;
    let store = misc.pictures().unwrap().join(&first_image);
    for size in ["128x128", "48x48", "240x240"] {
        assert!(
            store.join(format!("{size}.png")).is_file(),
            "{size} of {first_image}"
        );
    }

    // Move misc, then the API, then the UI, one stage at a time, with a client watching.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = background(proxy.url(), stop.clone());
    let mut images = vec![first_image.clone()];
    for (group, routes) in [("misc", &MISC[..]), ("API", &API[..]), ("UI", &UI[..])] {
        for mode in ["shadow", "canary", "extracted"] {
            for route in routes {
                flip(&client, &proxy, route, mode).await;
            }
            let step = format!("{group} → {mode}");
            assert_as_recorded(&client, &proxy, &step, &paths, &recorded).await;
            let again = record(&client, &proxy.url(), &first_thumbnails).await;
            assert_same(&step, &first_thumbnails, &upload_journey.1, &again);
            images.push(
                assert_upload_as_recorded(
                    &client,
                    &proxy,
                    (&sink, &bus),
                    &misc_name,
                    &step,
                    &upload_journey,
                )
                .await,
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (sent, failed) = watcher.await.unwrap();
    assert!(sent > 0, "the background client sent requests");
    assert_eq!(failed, 0, "failed requests during the flips (of {sent})");

    // The bus tells each step.
    let events = wait::eventually("every route.changed on the bus", DEADLINE, || {
        let sink = &sink;
        async move {
            let events = on_the_bus(sink).await;
            MISC.iter()
                .chain(&API)
                .chain(&UI)
                .all(|route| steps(&events, route).len() >= 3)
                .then_some(events)
        }
    })
    .await;
    for route in MISC.iter().chain(&API).chain(&UI) {
        assert_eq!(
            steps(&events, route),
            ["shadow", "canary", "extracted"],
            "route.changed events of {route}"
        );
    }

    // Redelivery: the first order's event and the page checkout's arrive again (new messages,
    // same event ids), and so does the first upload; each is applied once.
    deliver_again(&bus, &placed[0]).await;
    deliver_again(&bus, &placed[2]).await;
    deliver_again(&bus, &uploads[0]).await;
    caught_up(&bus, &api_name, ORDER_PLACED).await;
    caught_up(&bus, &misc_name, ORDER_PLACED).await;
    caught_up(&bus, &format!("{misc_name}-thumbs"), IMAGE_UPLOADED).await;
    assert_eq!(
        projection(&client, &api.url(), &orders).await,
        monolith,
        "a redelivered event changed nothing"
    );
    assert_as_recorded(&client, &proxy, "redelivery", &paths, &recorded).await;

    // Rebuild: a second API service and a second misc service, with consumer names of their
    // own, replay the stream from the start (duplicates included) into empty stores and end
    // with the same data: the API projection, the feeds, and every upload's thumbnails.
    let rebuilt_name = brokers::unique("rebuild");
    let rebuilt = Service::api(
        Service::bind().await,
        proxy.config_path(),
        rebuilt_name.clone(),
        legacy.url(),
    );
    let rebuilt_misc_name = brokers::unique("rebuild-misc");
    let rebuilt_misc = Service::misc_live(
        Service::bind().await,
        proxy.config_path(),
        rebuilt_misc_name.clone(),
        legacy.url(),
    );
    caught_up(&bus, &rebuilt_name, ORDER_PLACED).await;
    caught_up(&bus, &rebuilt_misc_name, ORDER_PLACED).await;
    caught_up(&bus, &format!("{rebuilt_misc_name}-thumbs"), IMAGE_UPLOADED).await;
    assert_eq!(
        projection(&client, &rebuilt.url(), &orders).await,
        monolith,
        "the projection rebuilt from the stream"
    );
    let feeds: Vec<String> = ["/misc/feed.rss", "/misc/export.csv"]
        .map(str::to_owned)
        .to_vec();
    let (monolith_url, rebuilt_url) = (legacy.url(), rebuilt_misc.url());
    assert_same(
        "rebuilding the misc service",
        &feeds,
        &unhosted(record(&client, &monolith_url, &feeds).await, &monolith_url),
        &unhosted(record(&client, &rebuilt_url, &feeds).await, &rebuilt_url),
    );
    for id in &images {
        let paths = thumbnails(id);
        assert_same(
            &format!("rebuilding the thumbnails of {id}"),
            &paths,
            &upload_journey.1,
            &record(&client, &rebuilt_misc.url(), &paths).await,
        );
    }

    rebuilt_misc.stop().await;
    rebuilt.stop().await;
    ui.stop().await;
    api.stop().await;
    proxy.stop().await;
    misc.stop().await;
    legacy.stop().await;
    brokers::delete_nats_stream(&bus).await;
}

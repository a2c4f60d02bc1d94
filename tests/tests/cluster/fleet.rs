//! A fleet of in-process strangler instances sharing one bucket on the shared NATS server:
//! each instance has its own folder (routes.toml, admin token, on-disk mode copy) so it can
//! be stopped and started again on the same files.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use strangler::server::Handle;
use system_tests::wait::eventually;

/// The admin token of every instance.
pub const TOKEN: &str = "fleet-secret";

/// How long a change may take to reach every instance before a test gives up (generous: the
/// machine is shared; convergence time is the benchmark's to report, not a test's to assert).
pub const CONVERGE: Duration = Duration::from_secs(30);

/// An upstream nothing listens on (tests that send no traffic).
pub const NOWHERE: &str = "http://127.0.0.1:1";

/// routes.toml of an instance: routes `thumbnail` and `currency` in shadow, the monolith at
/// `legacy`, the fleet's `[cluster]`.
pub fn routes_toml(nats: &str, bucket: &str, instance: &str, legacy: &str) -> String {
    format!(
        r#"default_upstream = "legacy"

[listen]
address = "127.0.0.1:0"

[admin]
address = "127.0.0.1:0"
token_file = "token"

[upstreams.legacy]
url = "{legacy}"

[upstreams.misc]
url = "http://127.0.0.1:2"

[[routes]]
id = "thumbnail"
match = {{ path = "/misc/thumbnail" }}
mode = "shadow"
extracted = "misc"

[[routes]]
id = "currency"
match = {{ path = "/misc/currency" }}
mode = "shadow"
extracted = "misc"

[cluster]
kind = "nats"
url = "{nats}"
bucket = "{bucket}"
instance = "{instance}"
"#
    )
}

/// One instance: its folder and, while running, its handle.
pub struct Instance {
    /// The folder with routes.toml and the token.
    pub dir: tempfile::TempDir,
    /// The running proxy, if started.
    pub handle: Option<Handle>,
}

impl Instance {
    /// Writes the instance's files and starts it (its monolith is [`NOWHERE`]).
    pub async fn start(nats: &str, bucket: &str, name: &str) -> Self {
        Self::start_with_legacy(nats, bucket, name, NOWHERE).await
    }

    /// Writes the instance's files with the monolith at `legacy` and starts it.
    pub async fn start_with_legacy(nats: &str, bucket: &str, name: &str, legacy: &str) -> Self {
        Self::start_with_routes(&routes_toml(nats, bucket, name, legacy)).await
    }

    /// Writes the instance's files with `routes` as its routes.toml and starts it.
    pub async fn start_with_routes(routes: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("token"), TOKEN).expect("write the token");
        std::fs::write(dir.path().join("routes.toml"), routes).expect("write routes.toml");
        let mut instance = Self { dir, handle: None };
        instance.restart().await;
        instance
    }

    /// The routes.toml path.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("routes.toml")
    }

    /// Starts (again) on the same files.
    pub async fn restart(&mut self) {
        let handle = strangler::server::start(&self.config())
            .await
            .unwrap_or_else(|e| panic!("instance did not start: {e}"));
        self.handle = Some(handle);
    }

    /// Kills it abruptly: its tasks are aborted mid-flight, nothing is released (a crash, as
    /// far as the fleet can tell).
    pub fn crash(&mut self) {
        drop(self.handle.take());
    }

    /// Stops it, keeping its files.
    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }

    /// `http://127.0.0.1:PORT` of its client listener.
    pub fn url(&self) -> String {
        let handle = self.handle.as_ref().expect("running");
        format!("http://{}", handle.addr())
    }

    /// `http://127.0.0.1:PORT` of its admin API.
    pub fn admin(&self) -> String {
        let handle = self.handle.as_ref().expect("running");
        format!("http://{}", handle.admin_addr())
    }

    /// The JSON its admin API answers to `GET path`.
    async fn admin_json(&self, client: &reqwest::Client, path: &str) -> Value {
        client
            .get(format!("{}{path}", self.admin()))
            .send()
            .await
            .expect("admin answers")
            .json()
            .await
            .expect("json")
    }

    /// `GET /admin/routes`.
    pub async fn routes(&self, client: &reqwest::Client) -> Value {
        self.admin_json(client, "/admin/routes").await
    }

    /// `GET /admin/routes/{id}`.
    pub async fn route(&self, client: &reqwest::Client, id: &str) -> Value {
        self.admin_json(client, &format!("/admin/routes/{id}"))
            .await
    }

    /// `GET /readyz`.
    pub async fn ready(&self, client: &reqwest::Client) -> Value {
        self.admin_json(client, "/readyz").await
    }

    /// `PUT /admin/routes/{id}` with `body`: the status and the JSON answer.
    pub async fn flip(&self, client: &reqwest::Client, id: &str, body: Value) -> (u16, Value) {
        let response = client
            .put(format!("{}/admin/routes/{id}", self.admin()))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }

    /// `POST /admin/kill`: the status and the JSON answer.
    pub async fn kill(&self, client: &reqwest::Client) -> (u16, Value) {
        let response = client
            .post(format!("{}/admin/kill", self.admin()))
            .bearer_auth(TOKEN)
            .json(&json!({ "reason": "test" }))
            .send()
            .await
            .expect("admin answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }

    /// Waits until this instance serves `route` in `mode` (and `percent`, for a canary) at
    /// `revision`.
    pub async fn until_applied(
        &self,
        client: &reqwest::Client,
        route: &str,
        mode: &str,
        percent: Option<f64>,
        revision: u64,
    ) {
        let what = format!(
            "{} to apply {route} = {mode} at revision {revision}",
            self.admin()
        );
        eventually(&what, CONVERGE, || async {
            let view = self.route(client, route).await;
            let ok = view["mode"] == mode
                && (percent.is_none() || view["canary_percent"].as_f64() == percent)
                && view["revision"].as_u64() == Some(revision);
            ok.then_some(())
        })
        .await;
    }
}

/// Deletes the bucket a test made, and the fleet's lease, evidence and instances buckets beside it
/// (absent when NATS was never reachable to the instances).
pub async fn delete_bucket(nats: &str, bucket: &str) {
    let client = async_nats::connect(nats).await.expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    js.delete_key_value(bucket)
        .await
        .unwrap_or_else(|e| panic!("delete bucket {bucket}: {e}"));
    for aux in ["leader", "evidence", "instances"] {
        let name = format!("{bucket}-{aux}");
        if js.get_key_value(&name).await.is_ok() {
            js.delete_key_value(&name)
                .await
                .unwrap_or_else(|e| panic!("delete bucket {name}: {e}"));
        }
    }
}

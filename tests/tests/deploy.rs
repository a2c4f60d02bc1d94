//! The Kubernetes manifests under `deploy/kubernetes` hold together: every document parses,
//! the routes.toml in the ConfigMap is a valid strangler config in cluster mode, and the
//! Deployment, its probes and the Services agree with it (ports, labels, the admin token, the
//! shutdown grace inside the pod's termination grace, a writable folder for what strangler
//! writes beside its config).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Every YAML document of every manifest, with the file it came from.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder())
        .expect("deploy/kubernetes exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
            assert!(value["kind"].is_string(), "{name}: a document without kind");
            docs.push((name.clone(), value));
        }
    }
    docs
}

fn one<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} {name}");
    found[0]
}

/// The port of `host:port`.
fn port(address: &str) -> u64 {
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// The `containerPort` of the port called `name`.
fn named_port(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("the container has no port named {name}"))["containerPort"]
        .as_u64()
        .unwrap()
}

#[test]
fn manifests_agree_with_each_other_and_with_the_config() {
    let docs = documents();
    let kinds: BTreeSet<&str> = docs
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "Deployment", "Service"]),
        "{docs:#?}"
    );

    // The config: valid, in cluster mode, instance left to the default (hostname + port, so
    // each pod is its own instance), the admin token from the environment.
    let routes = one(&docs, "ConfigMap", "strangler-routes")["data"]["routes.toml"]
        .as_str()
        .expect("the ConfigMap holds routes.toml");
    let config = strangler::config::from_toml_str(routes, "deploy/kubernetes/configmap.yaml")
        .unwrap_or_else(|e| panic!("the ConfigMap's routes.toml is invalid:\n{e}"));
    let raw = config.raw();
    let cluster = raw.cluster.as_ref().expect("[cluster] is set");
    assert!(
        cluster.instance.is_none(),
        "one instance name for every pod"
    );
    let token_env = raw
        .admin
        .token_env
        .as_deref()
        .expect("admin.token_env is set");

    let deployment = one(&docs, "Deployment", "strangler");
    let spec = &deployment["spec"];
    assert!(
        spec["replicas"].as_u64().unwrap() >= 2,
        "a fleet, not one pod"
    );
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(&spec["selector"]["matchLabels"], labels);
    let container = &pod["containers"][0];

    // Ports and probes match the listeners.
    assert_eq!(named_port(container, "http"), port(&raw.listen.address));
    assert_eq!(named_port(container, "admin"), port(&raw.admin.address));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "admin");

    // The token the config names comes from a Secret.
    let env = container["env"].as_array().unwrap();
    let token = env
        .iter()
        .find(|e| e["name"] == token_env)
        .unwrap_or_else(|| panic!("the container does not set {token_env}"));
    assert!(token["valueFrom"]["secretKeyRef"]["name"].is_string());

    // SIGTERM drains within the pod's grace, preStop pause included.
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        raw.listen.shutdown_grace.as_secs() + pre_stop < grace,
        "shutdown_grace {:?} + preStop {pre_stop}s must fit in terminationGracePeriodSeconds {grace}",
        raw.listen.shutdown_grace
    );

    // strangler runs on a copy of the config in a writable volume (journal, spool, corpus and
    // the fleet's modes are written beside it); the init container makes that copy.
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args.iter().position(|a| *a == "--config").unwrap();
    let config_path = Path::new(args[at + 1]);
    let mount_of = |c: &Value, volume: &str| -> String {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == volume)
            .unwrap_or_else(|| panic!("no mount of {volume}"))["mountPath"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let data = mount_of(container, "data");
    assert_eq!(config_path.parent().unwrap(), Path::new(&data));
    let init = &pod["initContainers"][0];
    let copy: Vec<&str> = init["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(copy.first(), Some(&"cp"));
    assert_eq!(copy.last(), Some(&config_path.to_str().unwrap()));
    assert_eq!(
        Path::new(copy[1]).parent().unwrap(),
        Path::new(&mount_of(init, "routes"))
    );
    let volumes = pod["volumes"].as_array().unwrap();
    let routes_volume = volumes.iter().find(|v| v["name"] == "routes").unwrap();
    assert_eq!(routes_volume["configMap"]["name"], "strangler-routes");

    // The Services select the pods and name ports the container has.
    for (service, target) in [("strangler", "http"), ("strangler-admin", "admin")] {
        let service = one(&docs, "Service", service);
        let selector = service["spec"]["selector"].as_object().unwrap();
        for (key, value) in selector {
            assert_eq!(&labels[key], value, "selector {key}");
        }
        assert_eq!(service["spec"]["ports"][0]["targetPort"], target);
    }
}

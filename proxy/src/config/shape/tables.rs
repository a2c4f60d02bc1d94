//! The tables of `routes.toml`: every key, whether it is required, and the shape of its
//! value. [`ROOT`] is the whole file; the walk in the parent module checks a value against it.

/// What a value must look like.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A table with these keys and no others.
    Table(&'static [Field]),
    /// A table with free keys, each value of this shape.
    Map(&'static Shape),
    /// An array, each element of this shape.
    List(&'static Shape),
    /// A string.
    Str,
    /// A non-negative integer up to `max`.
    Int { max: u64 },
    /// A number (integer or float).
    Float,
    /// `true` or `false`.
    Bool,
    /// A value of the first shape or of the second, told apart by its kind (a boolean or a
    /// table; a number or a string).
    Either(&'static Shape, &'static Shape),
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A humantime duration string such as `"10s"`.
    Duration,
    /// A [`ByteSize`](crate::config::ByteSize): an integer or a string such as `"64KiB"`.
    Size,
}

/// A key of a [`Shape::Table`].
#[derive(Debug)]
pub(crate) struct Field {
    pub(super) name: &'static str,
    pub(super) shape: &'static Shape,
    /// For a required key, an example line to show when it is missing.
    pub(super) required: Option<&'static str>,
}

const fn opt(name: &'static str, shape: &'static Shape) -> Field {
    Field {
        name,
        shape,
        required: None,
    }
}

const fn req(name: &'static str, shape: &'static Shape, example: &'static str) -> Field {
    Field {
        name,
        shape,
        required: Some(example),
    }
}

/// The names of [`crate::config::RouteMode`] in routes.toml.
const MODES: &[&str] = &["legacy", "shadow", "canary", "extracted", "retired"];

static STR: Shape = Shape::Str;
static FLOAT: Shape = Shape::Float;
static DURATION: Shape = Shape::Duration;
static SIZE: Shape = Shape::Size;
static STR_LIST: Shape = Shape::List(&STR);
static STR_MAP: Shape = Shape::Map(&STR);
static USIZE: Shape = Shape::Int {
    max: usize::MAX as u64,
};
static U32: Shape = Shape::Int {
    max: u32::MAX as u64,
};

static TLS: Shape = Shape::Table(&[
    req("cert", &STR, "cert = \"cert.pem\""),
    req("key", &STR, "key = \"key.pem\""),
]);
static LISTEN: Shape = Shape::Table(&[
    opt("address", &STR),
    opt("tls", &TLS),
    opt("max_connections", &USIZE),
    opt("header_read_timeout", &DURATION),
    opt("body_read_timeout", &DURATION),
    opt("idle_timeout", &DURATION),
    opt("shutdown_grace", &DURATION),
    opt("max_header_bytes", &SIZE),
    opt("max_headers", &USIZE),
    opt("max_uri_bytes", &SIZE),
    opt("h2_max_concurrent_streams", &U32),
    opt("h2_max_cancelled_streams", &U64),
    opt("max_request_body", &SIZE),
]);
static ADMIN: Shape = Shape::Table(&[
    opt("address", &STR),
    opt("token_file", &STR),
    opt("token_env", &STR),
]);
static UPSTREAM: Shape = Shape::Table(&[
    req("url", &STR, "url = \"http://127.0.0.1:8081\""),
    opt("host_header", &Shape::Enum(&["preserve", "rewrite"])),
    opt("connect_timeout", &DURATION),
    opt("response_timeout", &DURATION),
    opt("pool_idle_timeout", &DURATION),
    opt("connect_retries", &U32),
]);
static MATCH: Shape = Shape::Table(&[
    req("path", &STR, "path = \"/misc/thumbnail\""),
    opt("methods", &STR_LIST),
    opt("host", &STR),
    opt("headers", &STR_MAP),
]);
static SHADOW: Shape = Shape::Table(&[
    opt("sample", &FLOAT),
    opt("max_body", &SIZE),
    opt("writes", &Shape::Enum(&["skip", "mirror"])),
    opt("queue", &USIZE),
    opt("concurrency", &USIZE),
    opt("timeout", &DURATION),
    opt("baseline", &FLOAT),
    opt("remove_headers", &STR_LIST),
    opt("set_headers", &STR_MAP),
]);
static CANARY: Shape = Shape::Table(&[
    req("percent", &FLOAT, "canary = { percent = 10 }"),
    opt("key", &STR),
]);
static DIFF: Shape = Shape::Table(&[
    opt("headers", &STR_LIST),
    opt("ignore", &STR_LIST),
    opt("unordered", &STR_LIST),
    opt("absolute_tolerance", &FLOAT),
    opt("relative_tolerance", &FLOAT),
    opt("timestamp_tolerance", &DURATION),
    opt("max_body", &SIZE),
    opt("max_differences", &USIZE),
]);
static ROUTE: Shape = Shape::Table(&[
    req("id", &STR, "id = \"thumbnail\""),
    req("match", &MATCH, "match = { path = \"/misc/thumbnail\" }"),
    req("mode", &Shape::Enum(MODES), "mode = \"legacy\""),
    opt("legacy", &STR),
    opt("extracted", &STR),
    opt("shadow", &SHADOW),
    opt("canary", &CANARY),
    opt("max_request_body", &SIZE),
    opt("diff", &DIFF),
    opt("events", &EVENTS),
    opt("emit", &Shape::List(&EMIT)),
    opt("promote", &PROMOTE),
    opt("rollback", &ROLLBACK),
]);
static PROMOTE: Shape = Shape::Table(&[
    opt("auto", &BOOL),
    opt("min_samples", &U64),
    opt("max_regression_rate", &FLOAT),
    opt("max_error_rate_delta", &FLOAT),
    opt("max_p99_ratio", &FLOAT),
    opt("window", &DURATION),
    opt("steps", &Shape::List(&FLOAT)),
]);
static ROLLBACK: Shape = Shape::Table(&[
    opt("max_regression_rate", &FLOAT),
    opt("max_error_rate_delta", &FLOAT),
    opt("min_samples", &U64),
]);
static EVENTS: Shape = Shape::Either(
    &BOOL,
    &Shape::Table(&[
        opt("headers", &STR_LIST),
        opt("bodies", &BOOL),
        opt("max_body", &SIZE),
    ]),
);
static U16: Shape = Shape::Int {
    max: u16::MAX as u64,
};
static EMIT: Shape = Shape::Table(&[
    req("type", &STR, "type = \"shop.order.placed\""),
    opt(
        "when",
        &Shape::Table(&[
            opt("methods", &STR_LIST),
            opt("status", &Shape::List(&Shape::Either(&U16, &STR))),
        ]),
    ),
    opt("data", &STR_MAP),
]);
static SHADOW_SHARED: Shape = Shape::Table(&[opt("corpus", &STR), opt("corpus_max", &SIZE)]);
static BOOL: Shape = Shape::Bool;
static U64: Shape = Shape::Int { max: u64::MAX };
static BUS: Shape = Shape::Table(&[
    opt(
        "kind",
        &Shape::Enum(&["none", "log", "nats", "redis", "kafka"]),
    ),
    opt("path", &STR),
    opt("segment_size", &SIZE),
    opt("retention", &DURATION),
    opt("max_size", &SIZE),
    opt("fsync", &Shape::Enum(&["always", "interval", "never"])),
    opt("fsync_interval", &DURATION),
    opt("url", &STR),
    opt("stream", &STR),
    opt("subject_prefix", &STR),
    opt("key_prefix", &STR),
    opt("maxlen", &U64),
    opt("channel", &USIZE),
    opt("spool", &STR),
    opt("spool_max", &SIZE),
    opt("on_full", &Shape::Enum(&["drop_newest", "drop_oldest"])),
    opt("batch", &USIZE),
    opt("exchanges", &BOOL),
    opt("brokers", &STR),
    opt("topic", &STR),
    opt("topics_by_type", &STR_MAP),
    opt("partitions", &KAFKA_PARTITIONS),
    opt("replication_factor", &KAFKA_REPLICAS),
    opt(
        "compression",
        &Shape::Enum(&["none", "gzip", "lz4", "zstd"]),
    ),
    opt("format", &Shape::Enum(&["binary", "structured"])),
    opt("kafka", &Shape::Map(&KAFKA_SETTING)),
]);
/// A librdkafka setting: text, or a number or flag written bare (`"linger.ms" = 5`).
static KAFKA_SETTING: Shape = Shape::Either(&STR, &Shape::Either(&U64, &BOOL));
/// Kafka counts partitions in an i32 and replicas in an i16.
static KAFKA_PARTITIONS: Shape = Shape::Int {
    max: i32::MAX as u64,
};
static KAFKA_REPLICAS: Shape = Shape::Int {
    max: i16::MAX as u64,
};
static LOG: Shape = Shape::Table(&[
    opt("format", &Shape::Enum(&["text", "json"])),
    opt("level", &STR),
]);
static CLUSTER: Shape = Shape::Table(&[
    req("kind", &Shape::Enum(&["nats"]), "kind = \"nats\""),
    opt("url", &STR),
    opt("bucket", &STR),
    opt("instance", &STR),
    opt("evidence_window", &DURATION),
    opt("lease_ttl", &DURATION),
]);
pub(super) static ROOT_FIELDS: &[Field] = &[
    req("default_upstream", &STR, "default_upstream = \"legacy\""),
    opt("listen", &LISTEN),
    opt("admin", &ADMIN),
    opt("upstreams", &Shape::Map(&UPSTREAM)),
    opt("routes", &Shape::List(&ROUTE)),
    opt("shadow", &SHADOW_SHARED),
    opt("bus", &BUS),
    opt("log", &LOG),
    opt("cluster", &CLUSTER),
];
pub(super) static ROOT: Shape = Shape::Table(ROOT_FIELDS);

//! # strangler
//!
//! A strangler-fig migration proxy. It sits in front of a legacy monolith and moves its
//! endpoints, one route at a time, to new services: each route is `legacy`, `shadow`,
//! `canary`, `extracted` or `retired` (see [`config::RouteMode`]), changed by editing
//! `routes.toml` and applied without a restart.
//!
//! ## Modules
//!
//! - [`config`]: the `routes.toml` schema, loading (file + `STRANGLER__…` env) and validation
//!   with file:line errors.
//! - [`routing`]: compiles routes into a matcher (path, method, host, header); the most
//!   specific route wins.
//! - [`forward`]: each upstream's pool of keep-alive connections, HTTP/1.1 to upstreams
//!   spoken by the requesting task itself, hop-by-hop and `X-Forwarded-*` rules, body
//!   limits, timeouts and connect retries.
//! - [`shadow`]: mirroring to the candidate under a per-route budget, comparison records,
//!   the mismatch corpus.
//! - [`diff`]: compares a legacy and a candidate answer (status, headers, decoded body by
//!   content type) and judges the differences against a noise baseline learned from legacy.
//! - [`events`]: CloudEvents the proxy publishes (exchanges, comparisons, changes) and the
//!   sinks that carry them (embedded log, NATS JetStream, Redis Streams, Kafka), with a disk spool.
//! - [`proxy`]: the request handler, phase by phase, over the live [`reload::Snapshot`].
//! - [`listen`]: the client listener (HTTP/1.1, h2c, TLS), connection limits, graceful drain.
//! - [`rollout`]: the route lifecycle, checked flips that rewrite routes.toml, the audit
//!   journal.
//! - [`reload`]: load → validate → compile → swap, on file change, SIGHUP or admin call.
//! - [`admin`]: the admin API on its own listener.
//! - [`cluster`]: cluster mode: route modes shared by a fleet of instances through a NATS
//!   JetStream key-value bucket, with compare-and-set flips and an on-disk fallback.
//! - [`server`]: starts and stops all of the above as one [`server::Handle`].
//! - [`cli`]: the `strangler` command line.
//!
//! ## The data path
//!
//! listener → `routing` → `forward` (to legacy or extracted) → response to the client.
//! Beside it, off the hot path: `shadow` → `diff` → `events`.

pub mod admin;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod diff;
pub mod events;
pub mod forward;
pub mod listen;
pub mod proxy;
pub mod reload;
pub mod rollout;
pub mod routing;
pub mod server;
pub mod shadow;

//! # extracted — the services peeled off the monolith
//!
//! The strangler-fig migration moves the legacy shop (`legacy-shim`) one route at a time
//! into new, independent services. Each service here is new code with its own storage: it
//! never links the monolith, and it reproduces the monolith's answers exactly as a client sees
//! them (status, the headers that matter, body bytes), so the proxy can shadow a route, find
//! the two answers equal, and then let the new service answer for real.
//!
//! ## Services
//!
//! | module   | its job |
//! |----------|---------|
//! | [`misc`] | the first extraction: everything under `/misc` — health, currency conversion, RSS/Atom feeds, the CSV export, thumbnails, the download stream, the WebSocket echo and the redirect |
//!
//! Later, in the same crate: the JSON API service, the server-rendered UI front, and the
//! event consumers that keep each service's own storage up to date from what the monolith
//! does (the proxy publishes it onto the event bus).
//!
//! ## Running one
//!
//! Each service is an `app(options) -> axum::Router` (tests drive it with
//! `tower::ServiceExt::oneshot`) and a `serve(listener, shutdown)` that serves a bound
//! listener until `shutdown` resolves. The `misc-service` binary is a thin shell over
//! [`misc::serve_with`].

pub mod misc;

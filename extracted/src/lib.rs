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
//! | [`api`]  | the back-end JSON API (products, orders, batches, allocation, imports) with storage of its own (SQLite or PostgreSQL), kept in step with the monolith by its events |
//! | [`misc`] | the first extraction: everything under `/misc` — health, currency conversion, RSS/Atom feeds, the CSV export, thumbnails, the download stream, the WebSocket echo and the redirect |
//! | [`ui`] | the shop's server-rendered pages, with all their data from the JSON API over HTTP (the UI/back-end split) |
//! | [`worker`] | event consumers: the thumbnail worker that renders uploaded pictures' thumbnails ahead of time, and the order consumer behind the misc feeds |
//! | [`monolith`] | the monolith's public JSON API, read to complete an event that names an order by its id only (the page checkout) |
//!
//! Each service keeps its own data up to date from what the monolith does: the proxy
//! derives domain events from the monolith's traffic and publishes them onto its event bus,
//! and the services consume them (`strangler::events::consume`).
//!
//! ## Running one
//!
//! Each service is an `app(options) -> axum::Router` (tests drive it with
//! `tower::ServiceExt::oneshot`) and a `serve(listener, shutdown)` that serves a bound
//! listener until `shutdown` resolves. The `misc-service` binary is a thin shell over
//! [`misc::serve_with`].

pub mod api;
pub mod misc;
pub mod monolith;
pub mod ui;
pub mod worker;

//! Event consumers: work the extracted services do in reaction to what the monolith does,
//! learned from the events the proxy derives from its traffic (`emit` rules in routes.toml),
//! never from the monolith's database.
//!
//! Each consumer is a durable subscription (`strangler::events::consume::Consumer`) and is
//! idempotent by event id on its own side, so a redelivery, a restart or a
//! `strangler events replay` into its subscription changes nothing twice.
//!
//! | module       | consumes | its job |
//! |--------------|----------|---------|
//! | [`thumbnails`] | `shop.image.uploaded` | copies the uploaded picture into the misc service's picture store and renders its thumbnails ahead of time |
//! | [`orders`] | `shop.order.placed`, `shop.order.cancelled`, `shop.product.updated` | applies the monolith's orders and product edits to the misc service's catalogue, so its feeds and CSV export stay in step |

pub mod orders;
pub mod thumbnails;

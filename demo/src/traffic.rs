//! `demo traffic`: realistic shop traffic through the proxy, for a bounded number of rounds,
//! so the dashboard shows diffs and the bus shows events within a minute.
//!
//! Each round is what a handful of visitors do: browse the pages and the product JSON,
//! convert prices (some amounts are exact half cents, which the first version of the misc
//! service rounds differently), put things in a cart through the pages and check it out
//! through `/api/carts`, order through `POST /api/orders`, upload a picture and ask for its
//! thumbnail a round later; orders are read back a round later too (the API service learns
//! of them from the bus a moment after the monolith took them). Every request has a timeout; failures are counted, never retried.

mod journeys;
mod tally;

use std::time::Duration;

use anyhow::Context;

use journeys::Shop;
use tally::Tally;

/// How much traffic, and where to send it.
#[derive(Debug, clap::Args)]
pub struct TrafficArgs {
    /// The proxy's address (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    proxy: String,
    /// How many rounds of visitors (about 30 requests each).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rounds: u32,
    /// Pause between rounds, in milliseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pause_ms: u64,
}

/// Drives `args.rounds` rounds of shop traffic through the proxy, printing progress.
pub async fn run(args: TrafficArgs) -> anyhow::Result<()> {
    let base = loopback_base(&args.proxy)?;
    let shop = Shop::new(&base)?;
    println!(
        "driving {} rounds of shop traffic through {base}",
        args.rounds
    );
    let mut total = Tally::default();
    let mut uploaded: Option<String> = None;
    let mut placed: Vec<String> = Vec::new();
    for round in 1..=args.rounds {
        let mut tally = Tally::default();
        shop.read_back(&placed, &mut tally).await;
        shop.browse(round, &mut tally).await;
        shop.convert_prices(round, &mut tally).await;
        placed.clear();
        placed.extend(shop.cart_and_checkout(round, &mut tally).await);
        placed.extend(shop.order_through_api(round, &mut tally).await);
        if let Some(image) = uploaded.take() {
            shop.thumbnail(&image, &mut tally).await;
        }
        uploaded = shop.upload_picture(round, &mut tally).await;
        println!("round {round:>3}/{}: {tally}", args.rounds);
        if round == 1 && tally.answers() == 0 {
            anyhow::bail!(
                "nothing answered at {base}; start the demo first (`cargo run --release`) and run this in another terminal"
            );
        }
        total.add(&tally);
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
    }
    println!();
    println!("done: {total}");
    println!("look at what it caused:");
    let cli = "cargo run --release -q -p strangler --";
    println!("  {cli} diffs --route currency   # the currency defect, caught");
    println!("  {cli} diffs                    # every shadowed route");
    println!("  {cli} events tail --limit 10   # exchanges and shop.* events");
    println!("  http://127.0.0.1:9901/   # the dashboard");
    Ok(())
}

/// The proxy's base URL without a trailing `/`; only loopback hosts are driven.
fn loopback_base(proxy: &str) -> anyhow::Result<String> {
    let url = url_host(proxy).with_context(|| {
        format!("--proxy \"{proxy}\" is not an http:// URL; write e.g. http://127.0.0.1:8080")
    })?;
    if !matches!(url, "127.0.0.1" | "localhost" | "[::1]") {
        anyhow::bail!(
            "--proxy \"{proxy}\" is not a loopback address; the traffic driver only drives a local demo"
        );
    }
    Ok(proxy.trim_end_matches('/').to_owned())
}

/// The host of an `http://host[:port][/…]` URL.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => &authority[..v6.find(']')? + 2],
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::loopback_base;

    #[test]
    fn only_loopback_proxies_are_driven() {
        assert_eq!(
            loopback_base("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(loopback_base("http://localhost:9000").is_ok());
        assert!(loopback_base("http://[::1]:8080").is_ok());
        assert!(loopback_base("http://10.0.0.1:8080").is_err());
        assert!(loopback_base("https://127.0.0.1:8080").is_err());
        assert!(loopback_base("127.0.0.1:8080").is_err());
    }
}

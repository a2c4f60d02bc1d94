//! `GET /misc/currency?from=USD&to=EUR&amount=12.34`: conversion with a fixed rate table.
//!
//! The arithmetic is exact integer math, specified so an extracted service can reproduce it
//! to the cent:
//! 1. Rates are units per 1 USD with 6 decimals (`RATES`, in millionths).
//! 2. `rate = round6(to / from)`: the cross rate rounded half away from zero to 6 decimals.
//! 3. `amount` is a decimal with at most 6 decimals and 9 integer digits, optional sign.
//! 4. `result = round2(amount × rate)`: the exact product rounded half away from zero to
//!    2 decimals.
//!
//! `amount`, `rate` and `result` are JSON numbers holding exactly those decimals, printed as
//! serde_json prints the nearest `f64` (shortest round-trip form, so `12` prints as `12.0`).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Shop;
use crate::error::Problem;

/// Units of each currency per 1 USD, in millionths.
const RATES: &[(&str, i128)] = &[
    ("USD", 1_000_000),
    ("EUR", 920_000),
    ("GBP", 790_000),
    ("JPY", 156_250_000),
    ("CHF", 880_000),
    ("CAD", 1_370_000),
    ("AUD", 1_520_000),
    ("SEK", 10_450_000),
];

/// Decimal places of rates.
const RATE_SCALE: u32 = 6;
/// Most decimal places accepted in `amount`.
const MAX_AMOUNT_SCALE: u32 = 6;
/// Most integer digits accepted in `amount`.
const MAX_AMOUNT_DIGITS: usize = 9;

/// The query string; all three are required.
#[derive(Debug, Deserialize)]
pub(crate) struct Conversion {
    from: Option<String>,
    to: Option<String>,
    amount: Option<String>,
}

/// `GET /misc/currency` → `{"from","to","amount","rate","result","as_of"}`; 400 for a
/// missing or unknown currency or a bad amount.
pub(crate) async fn convert(
    State(shop): State<Shop>,
    query: Result<Query<Conversion>, QueryRejection>,
) -> Result<Json<Converted>, Problem> {
    let Query(query) =
        query.map_err(|rejection| Problem::bad_request("bad_query", rejection.body_text()))?;
    let from = currency("from", query.from.as_deref())?;
    let to = currency("to", query.to.as_deref())?;
    let Some(amount_text) = query.amount.as_deref() else {
        return Err(Problem::bad_request("missing_parameter", "give ?amount="));
    };
    let amount = parse_amount(amount_text).ok_or_else(|| {
        Problem::bad_request(
            "invalid_amount",
            format!(
                "amount must be a decimal with at most {MAX_AMOUNT_DIGITS} integer digits and \
                 {MAX_AMOUNT_SCALE} decimals, got {amount_text:?}"
            ),
        )
    })?;
    let rate = cross_rate(from.1, to.1);
    let result = convert_amount(amount, rate);
    Ok(Json(Converted {
        from: from.0,
        to: to.0,
        amount: number(amount),
        rate: number(Decimal {
            units: rate,
            scale: RATE_SCALE,
        }),
        result: number(result),
        as_of: shop.clock().timestamp(),
    }))
}

/// The conversion answer; the numbers hold the exact decimals described above.
#[derive(Debug, Serialize)]
pub(crate) struct Converted {
    from: &'static str,
    to: &'static str,
    amount: Value,
    rate: Value,
    result: Value,
    as_of: String,
}

/// An exact decimal: `units / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    units: i128,
    scale: u32,
}

fn currency(field: &str, code: Option<&str>) -> Result<(&'static str, i128), Problem> {
    let Some(code) = code else {
        return Err(Problem::bad_request(
            "missing_parameter",
            format!("give ?{field}="),
        ));
    };
    let upper = code.trim().to_ascii_uppercase();
    RATES
        .iter()
        .find(|(known, _)| *known == upper)
        .copied()
        .ok_or_else(|| {
            Problem::bad_request("unknown_currency", format!("unknown currency {code:?}"))
        })
}

/// Parse `[+-]digits[.digits]` within the limits in the module docs.
fn parse_amount(text: &str) -> Option<Decimal> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = match rest.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (rest, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > MAX_AMOUNT_DIGITS
        || !digits_ok(whole)
        || !digits_ok(fraction)
        || fraction.len() > MAX_AMOUNT_SCALE as usize
        || (rest.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let units: i128 = format!("{whole}{fraction}").parse().ok()?;
    Some(Decimal {
        units: if negative { -units } else { units },
        scale: fraction.len() as u32,
    })
}

/// `n / d` rounded half away from zero (`d > 0`).
fn div_round_half_away(n: i128, d: i128) -> i128 {
    let (quotient, remainder) = (n / d, n % d);
    if 2 * remainder.abs() >= d {
        quotient + n.signum()
    } else {
        quotient
    }
}

/// `to / from` in millionths, rounded half away from zero.
fn cross_rate(from: i128, to: i128) -> i128 {
    div_round_half_away(to * 10_i128.pow(RATE_SCALE), from)
}

/// `amount × rate` rounded half away from zero to 2 decimals.
fn convert_amount(amount: Decimal, rate_millionths: i128) -> Decimal {
    let exact = amount.units * rate_millionths; // scale: amount.scale + RATE_SCALE
    let divisor = 10_i128.pow(amount.scale + RATE_SCALE - 2);
    Decimal {
        units: div_round_half_away(exact, divisor),
        scale: 2,
    }
}

/// The decimal as text, e.g. `-0.05`, `12.34`, `156.25`.
fn text(decimal: Decimal) -> String {
    let sign = if decimal.units < 0 { "-" } else { "" };
    let magnitude = decimal.units.unsigned_abs();
    if decimal.scale == 0 {
        return format!("{sign}{magnitude}");
    }
    let base = 10_u128.pow(decimal.scale);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / base,
        magnitude % base,
        width = decimal.scale as usize
    )
}

/// A JSON number for the decimal; at most 15 significant digits, so it prints back exactly.
fn number(decimal: Decimal) -> Value {
    text(decimal)
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::test_support::{get, router};

    fn convert_text(amount: &str, from: &str, to: &str) -> String {
        let rate = |code: &str| RATES.iter().find(|(c, _)| *c == code).unwrap().1;
        text(convert_amount(
            parse_amount(amount).unwrap(),
            cross_rate(rate(from), rate(to)),
        ))
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round_half_away(5, 10), 1);
        assert_eq!(div_round_half_away(-5, 10), -1);
        assert_eq!(div_round_half_away(4, 10), 0);
        assert_eq!(div_round_half_away(-15, 10), -2);
        assert_eq!(div_round_half_away(25, 10), 3);
    }

    #[test]
    fn conversions_to_the_cent() {
        assert_eq!(convert_text("12.34", "USD", "EUR"), "11.35"); // 11.3528
        assert_eq!(convert_text("0.005", "USD", "USD"), "0.01"); // exactly half
        assert_eq!(convert_text("-0.005", "USD", "USD"), "-0.01");
        assert_eq!(convert_text("0.004999", "USD", "USD"), "0.00");
        assert_eq!(convert_text("1", "EUR", "USD"), "1.09"); // rate 1.086957
        assert_eq!(convert_text("100", "JPY", "USD"), "0.64"); // rate 0.0064
        assert_eq!(convert_text("10", "USD", "JPY"), "1562.50");
        assert_eq!(convert_text("0.5", "GBP", "EUR"), "0.58"); // rate 1.164557 → 0.5822785
        assert_eq!(
            convert_text("999999999.999999", "USD", "SEK"),
            "10450000000.00"
        );
    }

    #[test]
    fn amounts_are_parsed_strictly() {
        for bad in [
            "",
            "-",
            "abc",
            "1e3",
            "1.",
            ".5",
            "1.2345678",
            "1234567890",
            "1,5",
            "NaN",
            "--1",
            " 1",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_amount("+0.50"),
            Some(Decimal {
                units: 50,
                scale: 2
            })
        );
    }

    #[tokio::test]
    async fn endpoint_answers_json_numbers() {
        let app = router();
        let reply = get(&app, "/misc/currency?from=USD&to=EUR&amount=12.34").await;
        assert_eq!(reply.status, StatusCode::OK);
        let text = reply.text();
        for part in [
            r#""amount":12.34"#,
            r#""rate":0.92"#,
            r#""result":11.35"#,
            r#""as_of":"2026-01-01T00:00:00Z""#,
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        let lower = get(&app, "/misc/currency?from=eur&to=usd&amount=1")
            .await
            .json();
        assert_eq!(
            (lower["from"].as_str(), lower["rate"].as_f64()),
            (Some("EUR"), Some(1.086957))
        );
    }

    #[tokio::test]
    async fn bad_input_is_400() {
        let app = router();
        for query in [
            "from=USD&to=XXX&amount=1",
            "from=USD&to=EUR&amount=ten",
            "from=USD&to=EUR",
            "to=EUR&amount=1",
        ] {
            let reply = get(&app, &format!("/misc/currency?{query}")).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
            assert!(reply.json()["code"].is_string());
        }
    }
}

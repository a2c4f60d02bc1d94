//! `GET /misc/currency?from=USD&to=EUR&amount=12.34`: conversion with the monolith's fixed
//! rate table and its exact integer arithmetic:
//!
//! 1. Rates are units per 1 USD with 6 decimals (`RATES`, in millionths).
//! 2. `rate = round6(to / from)`: the cross rate rounded half away from zero to 6 decimals.
//! 3. `amount` is a decimal with at most 6 decimals and 9 integer digits, optional sign.
//! 4. `result = round2(amount × rate)`: the exact product rounded half away from zero to
//!    2 decimals — or half-to-even with the `defect` knob (see `Options::defect`).
//!
//! The answer is `{"from","to","amount","rate","result","as_of"}` in that order, numbers
//! printed as the monolith prints them (through an `f64`: `10` → `10.0`, `1562.50` → `1562.5`).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Service;
use super::error::Problem;

/// Units of each currency per 1 USD, in millionths (the monolith's table).
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

/// The query string; all three are required, read as text so bad values get our error.
#[derive(Debug, Deserialize)]
pub(crate) struct Conversion {
    from: Option<String>,
    to: Option<String>,
    amount: Option<String>,
}

/// Why a conversion cannot be made; each becomes a 400.
#[derive(Debug, thiserror::Error)]
enum ConversionError {
    #[error("give ?{0}=")]
    Missing(&'static str),
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    #[error(
        "amount must be a decimal with at most {MAX_AMOUNT_DIGITS} integer digits and \
         {MAX_AMOUNT_SCALE} decimals, got {0:?}"
    )]
    InvalidAmount(String),
}

impl From<ConversionError> for Problem {
    fn from(err: ConversionError) -> Self {
        let code = match err {
            ConversionError::Missing(_) => "missing_parameter",
            ConversionError::UnknownCurrency(_) => "unknown_currency",
            ConversionError::InvalidAmount(_) => "invalid_amount",
        };
        Problem::bad_request(code, err.to_string())
    }
}

/// The answer, fields in the monolith's wire order.
#[derive(Serialize)]
struct Converted {
    from: &'static str,
    to: &'static str,
    amount: Value,
    rate: Value,
    result: Value,
    as_of: String,
}

/// How the result is rounded to the cent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounding {
    /// The monolith's rule.
    HalfAwayFromZero,
    /// The defect: ties go to the even cent.
    HalfToEven,
}

/// `GET /misc/currency` → the conversion; 400 for a missing or unknown currency or a bad
/// amount.
pub(crate) async fn convert(
    State(service): State<Service>,
    query: Result<Query<Conversion>, QueryRejection>,
) -> Result<Json<impl Serialize>, Problem> {
    let Query(query) =
        query.map_err(|rejection| Problem::bad_request("bad_query", rejection.body_text()))?;
    let from = currency("from", query.from.as_deref())?;
    let to = currency("to", query.to.as_deref())?;
    let amount_text = query.amount.ok_or(ConversionError::Missing("amount"))?;
    let amount = parse_amount(&amount_text).ok_or(ConversionError::InvalidAmount(amount_text))?;
    let rounding = if service.options().defect {
        Rounding::HalfToEven
    } else {
        Rounding::HalfAwayFromZero
    };
    let rate = cross_rate(from.1, to.1);
    let result = convert_amount(amount, rate, rounding);
    Ok(Json(Converted {
        from: from.0,
        to: to.0,
        amount: number(amount),
        rate: number(Decimal {
            units: rate,
            scale: RATE_SCALE,
        }),
        result: number(result),
        as_of: service.clock().timestamp(),
    }))
}

/// An exact decimal: `units / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    units: i128,
    scale: u32,
}

/// The known currency named by `code` (trimmed, any case) and its rate.
fn currency(
    field: &'static str,
    code: Option<&str>,
) -> Result<(&'static str, i128), ConversionError> {
    let code = code.ok_or(ConversionError::Missing(field))?;
    let upper = code.trim().to_ascii_uppercase();
    RATES
        .iter()
        .find(|(known, _)| *known == upper)
        .copied()
        .ok_or_else(|| ConversionError::UnknownCurrency(code.to_owned()))
}

/// Parse `[+-]digits[.digits]` within the limits in the module docs.
fn parse_amount(text: &str) -> Option<Decimal> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
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

/// `n / d` rounded to an integer by `rounding` (`d > 0`).
fn div_round(n: i128, d: i128, rounding: Rounding) -> i128 {
    let (quotient, remainder) = (n / d, n % d);
    let twice = 2 * remainder.abs();
    let away = match rounding {
        Rounding::HalfAwayFromZero => twice >= d,
        Rounding::HalfToEven => twice > d || (twice == d && quotient % 2 != 0),
    };
    if away {
        quotient + n.signum()
    } else {
        quotient
    }
}

/// `to / from` in millionths, rounded half away from zero (never affected by the defect).
fn cross_rate(from: i128, to: i128) -> i128 {
    div_round(
        to * 10_i128.pow(RATE_SCALE),
        from,
        Rounding::HalfAwayFromZero,
    )
}

/// `amount × rate` rounded to 2 decimals.
fn convert_amount(amount: Decimal, rate_millionths: i128, rounding: Rounding) -> Decimal {
    let exact = amount.units * rate_millionths; // scale: amount.scale + RATE_SCALE
    let divisor = 10_i128.pow(amount.scale + RATE_SCALE - 2);
    Decimal {
        units: div_round(exact, divisor, rounding),
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

/// A JSON number for the decimal, made the monolith's way (through an `f64`), so it prints
/// the same digits: at most 15 significant digits, which an `f64` holds exactly.
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
    use crate::misc::Options;
    use crate::misc::test_support::{get, router, router_with};

    fn convert_text(amount: &str, from: &str, to: &str, rounding: Rounding) -> String {
        let rate = |code: &str| RATES.iter().find(|(c, _)| *c == code).map_or(0, |r| r.1);
        let amount = parse_amount(amount).unwrap();
        text(convert_amount(
            amount,
            cross_rate(rate(from), rate(to)),
            rounding,
        ))
    }

    #[test]
    fn rounding_rules() {
        use Rounding::{HalfAwayFromZero as Away, HalfToEven as Even};
        for (n, away, even) in [
            (5, 1, 0),
            (-5, -1, 0),
            (4, 0, 0),
            (-15, -2, -2),
            (25, 3, 2),
            (26, 3, 3),
        ] {
            assert_eq!(div_round(n, 10, Away), away, "{n}");
            assert_eq!(div_round(n, 10, Even), even, "{n}");
        }
    }

    #[test]
    fn conversions_to_the_cent() {
        let away = Rounding::HalfAwayFromZero;
        assert_eq!(convert_text("12.34", "USD", "EUR", away), "11.35");
        assert_eq!(convert_text("0.005", "USD", "USD", away), "0.01");
        assert_eq!(convert_text("-0.005", "USD", "USD", away), "-0.01");
        assert_eq!(convert_text("1", "EUR", "USD", away), "1.09");
        assert_eq!(convert_text("10", "USD", "JPY", away), "1562.50");
        assert_eq!(
            convert_text("999999999.999999", "USD", "SEK", away),
            "10450000000.00"
        );
        assert_eq!(
            convert_text("0.125", "USD", "USD", Rounding::HalfToEven),
            "0.12"
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
    async fn answers_in_the_monolith_wire_format() {
        let reply = get(&router(), "/misc/currency?from=USD&to=JPY&amount=10").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.text(),
            r#"{"from":"USD","to":"JPY","amount":10.0,"rate":156.25,"result":1562.5,"as_of":"2026-01-01T00:00:00Z"}"#
        );
    }

    #[tokio::test]
    async fn the_defect_rounds_half_to_even() {
        let uri = "/misc/currency?from=USD&to=USD&amount=0.125";
        assert_eq!(get(&router(), uri).await.json()["result"], 0.13);
        let defective = router_with(Options {
            vary: false,
            defect: true,
            pictures: None,
        });
        assert_eq!(get(&defective, uri).await.json()["result"], 0.12);
    }

    #[tokio::test]
    async fn bad_input_is_400() {
        let app = router();
        for (query, code) in [
            ("from=USD&to=XXX&amount=1", "unknown_currency"),
            ("from=USD&to=EUR&amount=ten", "invalid_amount"),
            ("from=USD&to=EUR", "missing_parameter"),
            ("to=EUR&amount=1", "missing_parameter"),
        ] {
            let reply = get(&app, &format!("/misc/currency?{query}")).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(reply.json()["code"], code, "{query}");
        }
    }
}

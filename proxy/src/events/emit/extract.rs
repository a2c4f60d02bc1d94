//! Taking a rule's fields out of a finished exchange. Each body is decoded (gzip, deflate,
//! br) and parsed as JSON at most once per exchange, however many fields and rules read it.

use std::cell::OnceCell;
use std::io::Read;

use http::HeaderMap;
use http::header::CONTENT_ENCODING;
use serde_json::{Map, Value};

use super::{BODY_LIMIT, Field, Skip, Source};

/// A body as the exchange saw it.
#[derive(Debug, Clone, Copy)]
pub enum BodySeen<'a> {
    /// All of it (still content-encoded, as it went over the wire).
    Complete(&'a [u8]),
    /// Not kept: larger than the cap, cut short, or not asked for.
    Unavailable,
}

/// What rules may read of one finished exchange.
#[derive(Debug)]
pub struct Seen<'a> {
    /// Path parameters, percent-decoded.
    pub params: &'a [(String, String)],
    /// The request headers the rules name.
    pub request_headers: &'a HeaderMap,
    /// The response headers the rules name, and `content-encoding`.
    pub response_headers: &'a HeaderMap,
    /// The request body.
    pub request_body: BodySeen<'a>,
    /// The response body.
    pub response_body: BodySeen<'a>,
}

/// Reads fields out of a [`Seen`], parsing each body on first use.
#[derive(Debug)]
pub struct Extractor<'a> {
    seen: Seen<'a>,
    request_json: OnceCell<Result<Value, Skip>>,
    response_json: OnceCell<Result<Value, Skip>>,
}

impl<'a> Extractor<'a> {
    /// An extractor over `seen`.
    pub fn new(seen: Seen<'a>) -> Self {
        Self {
            seen,
            request_json: OnceCell::new(),
            response_json: OnceCell::new(),
        }
    }

    /// The event data of a rule with these `fields`, or the first reason it cannot be had.
    pub fn fields(&self, fields: &[Field]) -> Result<Map<String, Value>, Skip> {
        let mut data = Map::new();
        for field in fields {
            let mut value = self.value(&field.source).ok_or(Skip::MissingField)??;
            if let Some(capture) = &field.capture {
                let part = value.as_str().and_then(|text| capture.apply(text));
                value = Value::String(part.ok_or(Skip::MissingField)?);
            }
            data.insert(field.name.to_string(), value);
        }
        Ok(data)
    }

    /// One source's value: `None` when absent, `Some(Err)` when its body is unusable.
    fn value(&self, source: &Source) -> Option<Result<Value, Skip>> {
        match source {
            Source::Request(pointer) => match self.json(true) {
                Ok(doc) => pointer.get(doc).cloned().map(Ok),
                Err(skip) => Some(Err(*skip)),
            },
            Source::Response(pointer) => match self.json(false) {
                Ok(doc) => pointer.get(doc).cloned().map(Ok),
                Err(skip) => Some(Err(*skip)),
            },
            Source::Param(name) => self
                .seen
                .params
                .iter()
                .find(|(n, _)| n == &**name)
                .map(|(_, v)| Ok(Value::String(v.clone()))),
            Source::Header(name) => header_text(self.seen.request_headers, name).map(Ok),
            Source::ResponseHeader(name) => header_text(self.seen.response_headers, name).map(Ok),
        }
    }

    fn json(&self, request: bool) -> &Result<Value, Skip> {
        if request {
            self.request_json
                .get_or_init(|| parse(self.seen.request_body, None))
        } else {
            self.response_json
                .get_or_init(|| parse(self.seen.response_body, Some(self.seen.response_headers)))
        }
    }
}

/// A header's values as one string (repeated fields joined by `, `).
fn header_text(headers: &HeaderMap, name: &http::HeaderName) -> Option<Value> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut text = String::from_utf8_lossy(first.as_bytes()).into_owned();
    for more in values {
        text.push_str(", ");
        text.push_str(&String::from_utf8_lossy(more.as_bytes()));
    }
    Some(Value::String(text))
}

fn parse(body: BodySeen<'_>, encoded_by: Option<&HeaderMap>) -> Result<Value, Skip> {
    let BodySeen::Complete(bytes) = body else {
        return Err(Skip::BodyUnavailable);
    };
    let decoded = match encoded_by {
        Some(headers) => decode(headers, bytes)?,
        None => bytes.to_vec(),
    };
    serde_json::from_slice(&decoded).map_err(|_| Skip::NotJson)
}

/// Undoes `Content-Encoding` (gzip, deflate, br, in the order applied), within [`BODY_LIMIT`].
pub(super) fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, Skip> {
    let mut codings: Vec<String> = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        codings.extend(
            text.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty() && c != "identity"),
        );
    }
    let mut data = body.to_vec();
    for coding in codings.iter().rev() {
        let reader: Box<dyn Read + '_> = match coding.as_str() {
            "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(&data[..])),
            "deflate" => Box::new(flate2::read::ZlibDecoder::new(&data[..])),
            "br" => Box::new(brotli_decompressor::Decompressor::new(&data[..], 4096)),
            _ => return Err(Skip::BodyUnavailable),
        };
        let mut out = Vec::new();
        let limit = u64::try_from(BODY_LIMIT).unwrap_or(u64::MAX) + 1;
        reader
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|_| Skip::BodyUnavailable)?;
        if out.len() > BODY_LIMIT {
            return Err(Skip::BodyUnavailable);
        }
        data = out;
    }
    Ok(data)
}

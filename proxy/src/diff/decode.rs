//! Undoing `Content-Encoding` (gzip, deflate, br, and chains of them), within limits.
//!
//! Up to `max_body` decoded bytes are kept for a comparison by content. A larger body is
//! decoded on into a SHA-256 and compared by length and hash only. Decoding stops for good at
//! [`EXPANSION`] × `max_body`, so that a decompression bomb costs bounded time: such a body
//! counts as undecodable.

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;
use sha2::{Digest, Sha256};

/// How far past `max_body` a body is still decoded (into its hash).
const EXPANSION: usize = 16;

/// A decoded body.
#[derive(Debug)]
pub(super) enum Decoded {
    /// The whole body, at most `max_body` bytes.
    Whole(Bytes),
    /// Larger than `max_body`: only its length and hash.
    Over {
        /// Decoded length.
        len: usize,
        /// SHA-256 of the decoded bytes, hex.
        sha256: String,
    },
}

/// Decodes `body` as its `Content-Encoding` header says; the error says why it can't be.
pub(super) fn decode(
    headers: &HeaderMap,
    body: &Bytes,
    max_body: usize,
) -> Result<Decoded, String> {
    let mut codings: Vec<String> = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        codings.extend(
            text.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty() && c != "identity"),
        );
    }
    if codings.is_empty() {
        return Ok(if body.len() <= max_body {
            Decoded::Whole(body.clone())
        } else {
            Decoded::Over {
                len: body.len(),
                sha256: hex::encode(Sha256::digest(body)),
            }
        });
    }
    // Codings are listed in the order they were applied: undo the last one first.
    let mut reader: Box<dyn Read + '_> = Box::new(&body[..]);
    for (i, coding) in codings.iter().rev().enumerate() {
        reader = match coding.as_str() {
            "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            // RFC 9110 deflate is zlib-wrapped; some servers send raw deflate. Only the
            // outermost layer can be looked at before decoding.
            "deflate" if i == 0 && !is_zlib(body) => {
                Box::new(flate2::read::DeflateDecoder::new(reader))
            }
            "deflate" => Box::new(flate2::read::ZlibDecoder::new(reader)),
            "br" => Box::new(brotli_decompressor::Decompressor::new(reader, 8 * 1024)),
            other => return Err(format!("unsupported content-encoding `{other}`")),
        };
    }
    let label = codings.join(", ");
    read_capped(reader, max_body).map_err(|e| format!("cannot decode {label}: {e}"))
}

/// Whether `body` starts with a zlib header (RFC 1950: deflate method, check bits).
fn is_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && ((u16::from(*cmf) << 8) | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

fn read_capped(mut reader: impl Read, max_body: usize) -> Result<Decoded, String> {
    let budget = max_body.saturating_mul(EXPANSION);
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut hasher: Option<Sha256> = None;
    let mut len = 0usize;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        len = len.saturating_add(n);
        let data = chunk.get(..n).unwrap_or_default();
        match &mut hasher {
            Some(h) => h.update(data),
            None if len <= max_body => kept.extend_from_slice(data),
            None => {
                let mut h = Sha256::new();
                h.update(&kept);
                h.update(data);
                kept = Vec::new();
                hasher = Some(h);
            }
        }
        if len > budget {
            return Err(format!("more than {budget} bytes decoded"));
        }
    }
    Ok(match hasher {
        None => Decoded::Whole(Bytes::from(kept)),
        Some(h) => Decoded::Over {
            len,
            sha256: hex::encode(h.finalize()),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use http::HeaderValue;

    use super::*;

    fn headers(coding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, HeaderValue::from_str(coding).unwrap());
        h
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn whole(d: Result<Decoded, String>) -> Vec<u8> {
        match d {
            Ok(Decoded::Whole(b)) => b.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chains_are_undone_last_first() {
        let once = gzip(b"hello");
        let twice = gzip(&once);
        let got = decode(&headers("gzip, gzip"), &Bytes::from(twice), 100);
        assert_eq!(whole(got), b"hello");
    }

    #[test]
    fn raw_and_zlib_deflate() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"zlib body").unwrap();
        let got = decode(&headers("deflate"), &Bytes::from(z.finish().unwrap()), 100);
        assert_eq!(whole(got), b"zlib body");
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        r.write_all(b"raw body").unwrap();
        let got = decode(&headers("deflate"), &Bytes::from(r.finish().unwrap()), 100);
        assert_eq!(whole(got), b"raw body");
    }

    #[test]
    fn over_the_limit_is_hashed_and_bombs_stop() {
        let data = vec![b'a'; 1000];
        let body = Bytes::from(gzip(&data));
        match decode(&headers("gzip"), &body, 100) {
            Ok(Decoded::Over { len, sha256 }) => {
                assert_eq!(len, 1000);
                assert_eq!(sha256, hex::encode(Sha256::digest(&data)));
            }
            other => panic!("{other:?}"),
        }
        let err = decode(&headers("gzip"), &body, 10).unwrap_err();
        assert!(err.contains("more than 160 bytes"), "{err}");
    }

    #[test]
    fn broken_and_unknown_codings_fail() {
        let body = Bytes::from(gzip(b"hello world, hello world"));
        let truncated = body.slice(..body.len() - 6);
        assert!(decode(&headers("gzip"), &truncated, 100).is_err());
        assert!(decode(&headers("gzip"), &Bytes::from_static(b"plain"), 100).is_err());
        assert!(decode(&headers("br"), &Bytes::from_static(b"\xff\xff\xff"), 100).is_err());
        let err = decode(&headers("zstd"), &body, 100).unwrap_err();
        assert!(err.contains("zstd"), "{err}");
    }
}

use proptest::prelude::*;

use super::*;

fn parts(method: Method, uri: &str, fields: &[(&str, &str)]) -> request::Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in fields {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn encode(parts: &mut request::Parts, body: BodyShape) -> (String, RequestFraming) {
    let mut out = Vec::new();
    let framing = encode_request(parts, body, &mut out);
    (String::from_utf8(out).unwrap(), framing)
}

const EMPTY: BodyShape = BodyShape {
    empty: true,
    exact: Some(0),
};

#[test]
fn a_request_head_is_written_as_the_fields_are() {
    let mut p = parts(
        Method::GET,
        "/search?q=%C3%A9",
        &[("host", "shop.example"), ("accept", "a"), ("accept", "b")],
    );
    let (head, framing) = encode(&mut p, EMPTY);
    assert_eq!(
        head,
        "GET /search?q=%C3%A9 HTTP/1.1\r\nhost: shop.example\r\naccept: a\r\naccept: b\r\n\r\n"
    );
    assert_eq!(framing, RequestFraming::Length(0));
}

#[test]
fn a_body_is_framed_by_its_content_length_its_size_or_chunks() {
    let mut p = parts(Method::POST, "/", &[("content-length", "5")]);
    let shape = BodyShape {
        empty: false,
        exact: None,
    };
    let (head, framing) = encode(&mut p, shape);
    assert_eq!(framing, RequestFraming::Length(5));
    assert!(head.contains("content-length: 5\r\n"), "{head}");

    let mut p = parts(Method::POST, "/", &[]);
    let shape = BodyShape {
        empty: false,
        exact: Some(11),
    };
    let (head, framing) = encode(&mut p, shape);
    assert_eq!(framing, RequestFraming::Length(11));
    assert!(head.contains("content-length: 11\r\n"), "{head}");

    let mut p = parts(Method::PUT, "/", &[("trailer", "x-sum")]);
    let shape = BodyShape {
        empty: false,
        exact: None,
    };
    let (head, framing) = encode(&mut p, shape);
    assert_eq!(framing, RequestFraming::Chunked);
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
}

#[test]
fn a_transfer_encoding_from_elsewhere_is_not_sent() {
    let mut p = parts(
        Method::POST,
        "/",
        &[("transfer-encoding", "gzip"), ("content-length", "3")],
    );
    let shape = BodyShape {
        empty: false,
        exact: Some(3),
    };
    let (head, framing) = encode(&mut p, shape);
    assert_eq!(framing, RequestFraming::Length(3));
    assert!(!head.contains("transfer-encoding"), "{head}");
}

#[test]
fn chunk_sizes_are_lowercase_hex() {
    for (len, line) in [
        (1, "1\r\n"),
        (15, "f\r\n"),
        (16, "10\r\n"),
        (65_536, "10000\r\n"),
    ] {
        let mut out = Vec::new();
        encode_chunk_size(len, &mut out);
        assert_eq!(out, line.as_bytes());
    }
}

#[test]
fn only_declared_trailer_fields_follow_the_last_chunk() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-sum", HeaderValue::from_static("abc"));
    trailers.insert("x-other", HeaderValue::from_static("no"));
    trailers.insert("content-length", HeaderValue::from_static("9"));
    let declared = [HeaderValue::from_static("X-Sum, content-length")];
    let mut out = Vec::new();
    encode_last_chunk(&declared, &trailers, &mut out);
    assert_eq!(out, b"0\r\nx-sum: abc\r\n\r\n");
    let mut out = Vec::new();
    encode_last_chunk(&[], &trailers, &mut out);
    assert_eq!(out, b"0\r\n\r\n");
}

fn parse(raw: &str, method: &Method) -> Result<Option<ResponseHead>, Malformed> {
    parse_response(&mut BytesMut::from(raw), method)
}

fn framing(raw: &str, method: &Method) -> ResponseFraming {
    parse(raw, method).unwrap().unwrap().framing
}

#[test]
fn a_response_head_is_parsed_and_removed_from_the_buffer() {
    let mut buf = BytesMut::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 5\r\n\r\nhello",
    );
    let head = parse_response(&mut buf, &Method::GET).unwrap().unwrap();
    assert_eq!(&buf[..], b"hello");
    assert_eq!(head.parts.status, StatusCode::OK);
    assert_eq!(head.parts.version, Version::HTTP_11);
    assert_eq!(head.parts.headers["content-type"], "text/plain");
    let cookies: Vec<_> = head.parts.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(head.framing, ResponseFraming::Length(5));
    assert!(head.keep_alive);
    assert!(
        head.parts
            .extensions
            .get::<hyper::ext::ReasonPhrase>()
            .is_none()
    );
}

#[test]
fn a_head_in_pieces_waits_for_the_rest() {
    let raw = "HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n";
    for cut in 0..raw.len() {
        let mut buf = BytesMut::from(&raw[..cut]);
        assert!(parse_response(&mut buf, &Method::GET).unwrap().is_none());
        assert_eq!(
            buf.len(),
            cut,
            "nothing is consumed before the head is whole"
        );
    }
}

#[test]
fn interim_answers_are_skipped() {
    let mut buf = BytesMut::from(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
    );
    let head = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
    assert_eq!(head.parts.status, StatusCode::CREATED);
    assert!(head.parts.headers.get("link").is_none());
    assert!(buf.is_empty());
    // An interim answer alone: the final one is still to come.
    let mut buf = BytesMut::from("HTTP/1.1 100 Continue\r\n\r\n");
    assert!(parse_response(&mut buf, &Method::POST).unwrap().is_none());
    assert!(buf.is_empty());
}

#[test]
fn an_unusual_reason_phrase_is_kept_for_the_client() {
    let head = parse("HTTP/1.1 200 Fine Thanks\r\n\r\n", &Method::GET)
        .unwrap()
        .unwrap();
    let reason = head.parts.extensions.get::<hyper::ext::ReasonPhrase>();
    assert_eq!(reason.unwrap().as_bytes(), b"Fine Thanks");
}

#[test]
fn framing_follows_rfc_9112() {
    let get = &Method::GET;
    assert_eq!(
        framing(
            "HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n",
            &Method::HEAD
        ),
        ResponseFraming::Empty
    );
    assert_eq!(
        framing(
            "HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n",
            get
        ),
        ResponseFraming::Empty
    );
    assert_eq!(
        framing("HTTP/1.1 204 No Content\r\n\r\n", get),
        ResponseFraming::Empty
    );
    assert_eq!(
        framing(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
            get
        ),
        ResponseFraming::Upgrade
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\n\r\n", &Method::CONNECT),
        ResponseFraming::Upgrade
    );
    assert_eq!(
        framing(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
            get
        ),
        ResponseFraming::Chunked
    );
    assert_eq!(
        framing(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n",
            get
        ),
        ResponseFraming::Chunked
    );
    assert_eq!(
        framing(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
            get
        ),
        ResponseFraming::UntilClose
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n", get),
        ResponseFraming::Length(3)
    );
    assert_eq!(
        framing("HTTP/1.0 200 OK\r\n\r\n", get),
        ResponseFraming::UntilClose
    );
}

#[test]
fn ambiguous_or_invalid_framing_is_refused() {
    let get = &Method::GET;
    for raw in [
        "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 0x3\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
    ] {
        assert_eq!(
            parse(raw, get).unwrap_err(),
            Malformed::ContentLength,
            "{raw}"
        );
    }
    assert_eq!(
        parse("HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", get).unwrap_err(),
        Malformed::TransferEncodingInHttp10
    );
    for raw in [
        "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx: a\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx : a\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
    ] {
        assert!(
            matches!(parse(raw, get), Err(Malformed::Head(_))),
            "{raw}: {:?}",
            parse(raw, get)
        );
    }
}

#[test]
fn keep_alive_follows_version_and_connection() {
    let get = &Method::GET;
    let keep = |raw: &str| parse(raw, get).unwrap().unwrap().keep_alive;
    assert!(keep("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    assert!(!keep(
        "HTTP/1.1 200 OK\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n"
    ));
    assert!(!keep("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"));
    assert!(keep(
        "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n"
    ));
    assert!(!keep("HTTP/1.1 101 Switching Protocols\r\n\r\n"));
}

#[test]
fn a_head_past_the_limit_is_refused() {
    let mut raw = String::from("HTTP/1.1 200 OK\r\n");
    while raw.len() < MAX_HEAD {
        raw.push_str(
            "x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    assert_eq!(
        parse(&raw, &Method::GET).unwrap_err(),
        Malformed::Head(httparse::Error::TooManyHeaders)
    );
    let mut raw = String::from("HTTP/1.1 200 OK\r\nx-long: ");
    raw.push_str(&"a".repeat(MAX_HEAD));
    assert_eq!(
        parse(&raw, &Method::GET).unwrap_err(),
        Malformed::HeadTooLarge
    );
}

/// Decodes `raw` fed to the decoder in pieces of `step` bytes: the data, the trailers and
/// how many bytes were left after the body.
fn dechunk(raw: &[u8], step: usize) -> Result<(Vec<u8>, HeaderMap, usize), Malformed> {
    let mut decoder = ChunkedDecoder::default();
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf)? {
            Chunk::Data(bytes) => data.extend_from_slice(&bytes),
            Chunk::End(trailers) => return Ok((data, trailers, buf.len() + raw.len() - fed)),
            Chunk::More => {
                if fed == raw.len() {
                    return Err(Malformed::ChunkSize);
                }
                let next = (fed + step).min(raw.len());
                buf.extend_from_slice(&raw[fed..next]);
                fed = next;
            }
        }
    }
}

#[test]
fn a_chunked_body_is_decoded_with_extensions_and_trailers() {
    let raw =
        b"5;name=value\r\nhello\r\n6 \r\n world\r\nA\r\n0123456789\r\n0\r\nx-sum: 1\r\n\r\nNEXT";
    for step in [1, 2, 7, raw.len()] {
        let (data, trailers, left) = dechunk(raw, step).unwrap();
        assert_eq!(data, b"hello world0123456789");
        assert_eq!(trailers["x-sum"], "1");
        // What follows the body stays for whoever reads next.
        assert_eq!(left, 4);
    }
}

#[test]
fn broken_chunk_framing_is_refused() {
    for (raw, error) in [
        (&b"x\r\n"[..], Malformed::ChunkSize),
        (b"\r\n", Malformed::ChunkSize),
        (b"5\nhello\r\n0\r\n\r\n", Malformed::ChunkSize),
        (b"-5\r\n", Malformed::ChunkSize),
        (b"11111111111111111\r\n", Malformed::ChunkSize),
        (b"5;a\x01b\r\nhello\r\n0\r\n\r\n", Malformed::ChunkSize),
        (b"5 x\r\nhello\r\n0\r\n\r\n", Malformed::ChunkSize),
        (b"3\r\nhello\r\n0\r\n\r\n", Malformed::ChunkEnd),
        (b"0\r\nbad trailer\r\n\r\n", Malformed::Trailers),
    ] {
        assert_eq!(
            dechunk(raw, raw.len()).unwrap_err(),
            error,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

proptest! {
    /// Any body, cut into any chunks and fed in any piece size, comes out whole.
    #[test]
    fn chunked_bodies_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(1usize..300, 1..20),
        step in 1usize..64,
    ) {
        let mut raw = Vec::new();
        let mut rest = &data[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
            encode_chunk_size(chunk.len(), &mut raw);
            raw.extend_from_slice(chunk);
            raw.extend_from_slice(b"\r\n");
            rest = tail;
        }
        encode_last_chunk(&[], &HeaderMap::new(), &mut raw);
        let (decoded, trailers, left) = dechunk(&raw, step).unwrap();
        prop_assert_eq!(decoded, data);
        prop_assert!(trailers.is_empty());
        prop_assert_eq!(left, 0);
    }

    /// Whatever bytes an upstream sends, parsing a head never panics, and a head it accepts
    /// is removed from the buffer exactly.
    #[test]
    fn any_bytes_parse_or_fail_cleanly(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = BytesMut::from(&raw[..]);
        if let Ok(Some(_)) = parse_response(&mut buf, &Method::GET) {
            prop_assert!(buf.len() < raw.len());
        }
    }
}

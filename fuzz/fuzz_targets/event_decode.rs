//! Event decoding as the consumers do it (NATS and Redis payloads, log lines): arbitrary
//! bytes to an `Event`. What decodes must encode to a log line that decodes again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strangler::events::{Event, segment};

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    let line = segment::to_line(&event);
    assert_eq!(line.last(), Some(&b'\n'), "a log line ends with a newline");
    assert!(
        !line[..line.len() - 1].contains(&b'\n'),
        "a log line holds one event"
    );
    if let Err(e) = serde_json::from_slice::<Event>(&line) {
        panic!("an encoded event does not decode: {e}");
    }
});

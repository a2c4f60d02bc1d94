//! The event-log segment reader over arbitrary files: the input is split at the first
//! `0xFE` into a first segment and, if present, the next one (starting after the first
//! one's complete lines). Reading must end (every item advances or stops) and never panic,
//! whatever torn, non-JSON or binary lines the files hold.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strangler::events::segment::{self, Item, Reader};

/// One folder per fuzzing process, emptied before every input.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("strangler-fuzz-segments-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    for (_, path) in segment::list(dir).unwrap_or_default() {
        let _ = std::fs::remove_file(path);
    }
    let (first, second) = match data.iter().position(|&b| b == 0xFE) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let write = |offset: u64, bytes: &[u8]| {
        let path = dir.join(segment::segment_name(offset));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
    };
    write(0, first);
    let lines = first.iter().filter(|&&b| b == b'\n').count() as u64;
    if let Some(second) = second {
        write(lines, second);
    }
    let total = data.iter().filter(|&&b| b == b'\n').count() + 2;
    let mut reader = Reader::at_offset(dir, 0);
    let mut items = 0;
    while let Ok(Some(item)) = reader.next_item() {
        items += 1;
        assert!(items <= total + 2, "the reader does not stop");
        if let Item::Event(offset, _) | Item::Bad { offset, .. } = item {
            assert!(offset < reader.offset());
        }
    }
});

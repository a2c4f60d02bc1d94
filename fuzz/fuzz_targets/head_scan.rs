//! The raw request-head scanner (`listen::scan`, reached through `listen::fuzz_scan`) over
//! arbitrary client bytes, split into reads at every `0xFF` byte. It must never panic, and
//! an offset it points at must lie inside the read it came from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strangler::listen;

fuzz_target!(|data: &[u8]| {
    let Some((&limits, rest)) = data.split_first() else {
        return;
    };
    // Small limits sometimes, to reach the too-many-headers and too-long-head paths.
    let (max_headers, max_head) = if limits & 1 == 0 {
        (100, 64 * 1024)
    } else {
        (usize::from(limits >> 4) + 1, usize::from(limits) * 4)
    };
    let pieces: Vec<&[u8]> = rest.split(|&b| b == 0xFF).collect();
    let results = listen::fuzz_scan(&pieces, max_headers, max_head);
    for (piece, result) in pieces.iter().zip(results) {
        if let Err(at) = result {
            assert!(
                at < piece.len(),
                "offset {at} outside a read of {}",
                piece.len()
            );
        }
    }
});

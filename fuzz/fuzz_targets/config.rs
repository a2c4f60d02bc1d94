//! routes.toml from arbitrary text: parse, validate, then compile the route table. Any input
//! must give a `Config` or diagnostics, never a panic; a valid config compiles or reports.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strangler::{config, routing::Table};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::from_toml_str(text, "fuzz.toml") {
        Ok(config) => {
            let _ = Table::compile(config.raw());
        }
        Err(diagnostics) => {
            assert!(
                !diagnostics.0.is_empty(),
                "an error names at least one problem"
            );
            let _ = diagnostics.to_string();
        }
    }
});

//! `strangler flip` and `strangler routes` against a fleet: the command line writes to the
//! bucket (compare-and-set), not to routes.toml, and shows revisions.

use std::process::Output;

use system_tests::strangler_bin;

/// Runs the `strangler` binary with `args` (off the async threads).
pub async fn strangler(args: &[&str]) -> Output {
    tokio::process::Command::new(strangler_bin())
        .args(args)
        .output()
        .await
        .expect("run strangler")
}

/// Its stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

//! The `strangler` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = strangler::cli::Cli::parse();
    match strangler::cli::main(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strangler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

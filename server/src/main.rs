//! The `regie-server` binary: parse the configuration, start tracing, run.

use clap::Parser;
use regie_server::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => regie_server::serve(args, regie_server::shutdown_signal()).await,
        Command::Demo(args) => regie_server::demo::run(args, regie_server::shutdown_signal()).await,
        Command::VerifyAudit(args) => regie_server::verify_audit(args).await,
        Command::Openapi => {
            println!(
                "{}",
                regie_server::http::openapi_document().to_pretty_json()?
            );
            Ok(())
        }
    }
}

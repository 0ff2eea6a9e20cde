//! The `regie-server` binary: read the configuration, start logging, run.

use regie_server::config::{self, Command, ConfigError};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let loaded = match config::load(std::env::args_os()) {
        Ok(loaded) => loaded,
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e @ ConfigError::File { .. }) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    regie_server::telemetry::init_logging(loaded.cli.log_format);
    match &loaded.cli.command {
        Command::Serve(args) => {
            regie_server::serve(args.clone(), regie_server::shutdown_signal()).await
        }
        Command::Demo(args) => {
            regie_server::demo::run(args.clone(), regie_server::shutdown_signal()).await
        }
        Command::VerifyAudit(args) => regie_server::verify_audit(args.clone()).await,
        Command::Migrate(args) => regie_server::migrate(args.clone()).await,
        Command::Backup(args) => regie_server::backup(args.clone()).await,
        Command::RotateKey(args) => regie_server::rotate_key(args.clone()).await,
        Command::Openapi => {
            println!(
                "{}",
                regie_server::http::openapi_document().to_pretty_json()?
            );
            Ok(())
        }
        Command::Config(_) => {
            print!("{}", loaded.report());
            Ok(())
        }
    }
}

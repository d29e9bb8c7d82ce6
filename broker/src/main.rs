//! `streamhouse`: parse flags, start an agent, wait for Ctrl-C or SIGTERM, shut down in order.

use std::process::ExitCode;

use clap::Parser;
use streamhouse::agent::Agent;
use streamhouse::config::{Config, LogFormat};
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_env("STREAMHOUSE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.with_ansi(ansi).init(),
        LogFormat::Json => logs.json().init(),
    }

    // Watch for signals before the port opens, so a SIGTERM right after start is a clean stop.
    let stop = stop_signal();
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!("cannot listen on {}: {e} (is another broker running? pick another --listen)", config.listen);
            return ExitCode::FAILURE;
        }
    };
    // The metadata URL may carry a password: never log it.
    let (metadata_url, object_store_url) = (streamhouse_metadata::redact_url(&config.metadata_url()), config.object_store_url());
    let agent = match Agent::start(config, listener).await {
        Ok(a) => a,
        Err(e) => {
            error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    info!("StreamHouse agent listening on {}, metadata at {metadata_url}, objects at {object_store_url}", agent.local_addr());
    stop.await;
    agent.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or SIGTERM; both are registered before this returns.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let ctrl_c = tokio::spawn(tokio::signal::ctrl_c());
    async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                error!("cannot watch SIGTERM ({e}); only Ctrl-C stops the agent cleanly");
                let _ = ctrl_c.await;
            }
        }
    }
}

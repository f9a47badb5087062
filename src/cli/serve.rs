//! `cabal-triage serve`: wires the configuration, ledger, runbooks, HTTP server and worker pool
//! together and runs them until SIGTERM/SIGINT (see `shutdown`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

use super::CliError;
use crate::config::{Config, LedgerBackend, SlackMode};
use crate::ledger::{
    DynamoLedger, Ledger, SqliteLedger, DESTINATION_PAGERDUTY, DESTINATION_SLACK,
    DESTINATION_SLACK_WEBHOOK,
};
use crate::metrics::Metrics;
use crate::notify::outbox::{configured_destinations, Outbox};
use crate::runbook::environment::Environment;
use crate::runbook::Registry;
use crate::server::{self, AppState, Authenticator, Limits};
use crate::shutdown::Shutdown;
use crate::worker::WorkerPool;

pub fn run(path: Option<&Path>) -> Result<(), CliError> {
    let config = Config::load(path).map_err(|e| CliError::Input(e.to_string()))?;
    config
        .auth
        .require_for_serve()
        .map_err(|e| CliError::Input(e.to_string()))?;
    crate::telemetry::init(&config.log);
    let file_text = path.and_then(|p| std::fs::read_to_string(p).ok());
    for warning in config.warnings(file_text.as_deref()) {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let shutdown = Shutdown::new();
        shutdown.listen_for_signals(config.worker.shutdown_grace());
        let config = Arc::new(config);
        let clients = crate::aws::AwsClients::load(
            &config.aws,
            Duration::from_secs(config.probes.aws_connect_timeout_secs),
            None,
        )
        .await;
        let env = Environment::new(
            crate::aws::probes::probe_set(
                &clients,
                &config,
                Arc::new(crate::dns::ResolverDnsbl::new(config.dnsbl.clone())),
            ),
            Arc::clone(&config),
            Environment::system_clock(),
        );
        let runbooks = Registry::with_sendmail(Arc::new(env));
        serve_with(&config, runbooks, shutdown, None).await
    })
}

/// The configured destinations, in the order deliveries are created.
fn destinations(config: &Config) -> Vec<String> {
    let mut destinations = Vec::new();
    if config.slack.enabled() {
        destinations.push(match config.slack.mode {
            SlackMode::Bot => DESTINATION_SLACK.to_string(),
            SlackMode::Webhook => DESTINATION_SLACK_WEBHOOK.to_string(),
        });
    }
    if config.pagerduty.enabled() {
        destinations.push(DESTINATION_PAGERDUTY.to_string());
    }
    destinations
}

/// Runs the service with `runbooks` until `shutdown`; `listening` learns the bound address
/// (the port may have been 0). `demo` runs it in-process with replay runbooks.
pub(crate) async fn serve_with(
    config: &Config,
    runbooks: Registry,
    shutdown: Shutdown,
    listening: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), CliError> {
    let ledger: Arc<dyn Ledger> = match config.ledger.backend {
        LedgerBackend::Sqlite => {
            let ledger = SqliteLedger::open(&config.ledger.path, destinations(config))
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            if config.ledger.max_size_mib > 0 {
                let cap = ledger
                    .limit_size(config.ledger.max_size_mib * 1024 * 1024)
                    .await
                    .map_err(|e| CliError::Runtime(e.to_string()))?;
                tracing::info!(cap_bytes = cap, "ledger size capped");
            }
            Arc::new(ledger)
        }
        LedgerBackend::Dynamodb => {
            let ledger = DynamoLedger::connect(
                &config.aws,
                &config.ledger.table,
                config.ledger.create_table,
                destinations(config),
                config.ledger.retention(),
                None,
            )
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
            tracing::info!(table = %ledger.table(), "ledger on DynamoDB");
            Arc::new(ledger)
        }
    };
    let runbooks = Arc::new(runbooks);
    let metrics = Arc::new(Metrics::new());
    let work_available = Arc::new(Notify::new());
    let listen = config
        .server
        .listen_addr()
        .map_err(|e| CliError::Input(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Runtime(format!("cannot listen on {listen}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let state = AppState {
        ledger: Arc::clone(&ledger),
        runbooks: Arc::clone(&runbooks),
        auth: Arc::new(Authenticator::new(&config.auth)),
        metrics: Arc::clone(&metrics),
        work_available: Arc::clone(&work_available),
        limits: Limits {
            body_bytes: config.server.body_limit_bytes,
            alerts_per_payload: config.server.max_alerts_per_payload,
            max_attempts: config.worker.max_attempts,
        },
    };
    // The outbox delivers to Slack / PagerDuty; it keeps going through the grace period (so
    // verdicts finished then still go out) and stops once the workers have.
    let outbox = Outbox::new(
        Arc::clone(&ledger),
        configured_destinations(config).map_err(CliError::Runtime)?,
        config,
        Arc::clone(&metrics),
        format!("{}:{}/outbox", hostname(), std::process::id()),
    );
    let outbox_stop = tokio_util::sync::CancellationToken::new();
    let outbox_task = tokio::spawn(outbox.run(outbox_stop.clone()));

    let pool = WorkerPool {
        ledger: Arc::clone(&ledger),
        runbooks,
        metrics,
        work_available,
        config: config.worker.clone(),
        owner_prefix: format!("{}:{}", hostname(), std::process::id()),
    };
    let workers = tokio::spawn(pool.run(shutdown.clone()));
    let purge = tokio::spawn(purge_loop(
        Arc::clone(&ledger),
        config.ledger.retention(),
        Duration::from_secs(config.ledger.purge_interval_secs),
        shutdown.clone(),
    ));

    // The line tests and operators wait for: the actual address (the port may have been 0).
    tracing::info!(listen = %local, "cabal-triage listening");
    match listening {
        Some(tell) => {
            let _ = tell.send(local);
        }
        None => eprintln!("cabal-triage listening on {local}"),
    }
    let stop = shutdown.stop_intake.clone();
    axum::serve(listener, server::router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| CliError::Runtime(format!("server failed: {e}")))?;
    let _ = workers.await;
    outbox_stop.cancel();
    let _ = tokio::time::timeout(config.worker.shutdown_grace(), outbox_task).await;
    purge.abort();
    tracing::info!("cabal-triage stopped");
    Ok(())
}

async fn purge_loop(
    ledger: Arc<dyn Ledger>,
    retention: Duration,
    every: Duration,
    shutdown: Shutdown,
) {
    loop {
        let cutoff = OffsetDateTime::now_utc() - retention;
        match ledger.purge(cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged episodes past retention"),
            Err(error) => tracing::warn!(%error, "purge failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.stop_intake.cancelled() => return,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

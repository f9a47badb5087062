//! The service, wired: the configuration in, the ledger, runbooks, probes, HTTP server, worker
//! pool and outbox built from it and run until `shutdown` (as mini-redis's `server::run`). The
//! command line (`cli`) loads the configuration, starts the runtime and the signal handling and
//! calls [`run`]; [`demo`] calls [`serve`] with replay runbooks. Only `cli` (and the binary) import
//! this module; it may import every other one.

pub mod demo;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::{Config, LedgerBackend, LogFormat, Rotation};
use crate::ledger::{
    run_retention, DeliveriesWritten, DynamoLedger, Ledger, RetentionPolicy, Route, SqliteLedger,
};
use crate::metrics::Metrics;
use crate::notify::outbox::{configured_destinations, Outbox};
use crate::notify::Destination;
use crate::probe::ProbeSet;
use crate::runbook::environment::Environment;
use crate::runbook::Registry;
use crate::server::{self, AppState, Authenticator, Limits};
use crate::shutdown::Shutdown;
use crate::worker::WorkerPool;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A setting that cannot work (exit status 2 at the command line).
    #[error("{0}")]
    Config(String),
    /// The ledger could not be opened or prepared; its message says what to check.
    #[error("{0}")]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A Slack or PagerDuty destination could not be set up.
    #[error("{0}")]
    Destinations(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Server(std::io::Error),
}

/// Where the running service re-reads its configuration on SIGHUP (the command line's
/// `--config` file and the environment, `*_file` secrets included).
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Runs the service on `config` until `shutdown`: the production probes (AWS and the DNS
/// resolver) behind the sendmail runbooks. With a `reload` source, SIGHUP re-reads the webhook
/// and read secrets from it without a restart.
pub async fn run(
    config: Arc<Config>,
    shutdown: Shutdown,
    reload: Option<ConfigSource>,
) -> Result<(), AppError> {
    let env = Environment::new(
        aws_probes(&config).await,
        Arc::clone(&config),
        Environment::system_clock(),
    );
    let runbooks = Registry::with_runbooks(Arc::new(env));
    serve(&config, runbooks, shutdown, None, reload).await
}

/// The production probes: ECS, ECS Exec, CloudWatch Logs and EC2 through the clients `[aws]`
/// describes, DNSBL through the configured resolver.
pub async fn aws_probes(config: &Config) -> ProbeSet {
    let clients = crate::aws::AwsClients::load(
        &config.aws,
        Duration::from_secs(config.probes.aws_connect_timeout_secs),
        None,
    )
    .await;
    crate::aws::probes::probe_set(
        &clients,
        config,
        Arc::new(crate::dns::ResolverDnsbl::new(config.dnsbl.clone())),
    )
}

/// The configured destinations, built once from configuration: the routes the ledger writes
/// delivery rows for (each destination's name and the delivery kinds it wants, in the order
/// deliveries are created), and the notifiers the outbox delivers through. Everything `serve`
/// knows about destinations comes from here.
struct Destinations {
    routes: Vec<Route>,
    notifiers: Vec<Arc<dyn Destination>>,
}

fn destinations(config: &Config) -> Result<Destinations, AppError> {
    let notifiers = configured_destinations(config).map_err(AppError::Destinations)?;
    let routes = notifiers.iter().map(|d| d.route()).collect();
    Ok(Destinations { routes, notifiers })
}

/// Runs the service with `runbooks` until `shutdown`; `listening` learns the bound address
/// (the port may have been 0); `reload`, when given, is re-read on SIGHUP for the secrets.
/// `demo` runs it in-process with replay runbooks.
pub async fn serve(
    config: &Config,
    runbooks: Registry,
    shutdown: Shutdown,
    listening: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    reload: Option<ConfigSource>,
) -> Result<(), AppError> {
    let destinations = destinations(config)?;
    let ledger: Arc<dyn Ledger> = match config.ledger.backend {
        LedgerBackend::Sqlite => {
            let ledger = SqliteLedger::open(&config.ledger.path, destinations.routes.clone())?;
            if config.ledger.max_size_mib > 0 {
                let cap = ledger
                    .limit_size(config.ledger.max_size_mib * 1024 * 1024)
                    .await?;
                tracing::info!(cap_bytes = cap, "ledger size capped");
            }
            Arc::new(ledger)
        }
        LedgerBackend::Dynamodb => {
            let ledger = DynamoLedger::connect(
                &config.aws,
                &config.ledger.table,
                config.ledger.create_table,
                destinations.routes.clone(),
                config.ledger.retention(),
                None,
            )
            .await?;
            tracing::info!(table = %ledger.table(), "ledger on DynamoDB");
            Arc::new(ledger)
        }
    };
    let runbooks = Arc::new(runbooks);
    let metrics = Arc::new(Metrics::new());
    let work_available = Arc::new(Notify::new());
    let deliveries_written = DeliveriesWritten::new();
    let listen = config
        .server
        .listen_addr()
        .map_err(|e| AppError::Config(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| AppError::Listen {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| AppError::Listen {
        addr: listen,
        source,
    })?;
    let auth = Arc::new(Authenticator::new(&config.auth));
    if let Some(source) = reload {
        tokio::spawn(reload_secrets_on_hangup(
            Arc::clone(&auth),
            destinations.notifiers.clone(),
            source,
            shutdown.stop_intake.clone(),
        ));
    }
    let state = AppState {
        ledger: Arc::clone(&ledger),
        runbooks: Arc::clone(&runbooks),
        auth: Arc::clone(&auth),
        metrics: Arc::clone(&metrics),
        work_available: Arc::clone(&work_available),
        deliveries_written: Arc::clone(&deliveries_written),
        post_unknown_alerts: config.notify.unknown_alerts == crate::config::UnknownAlerts::Post,
        limits: Limits {
            body_bytes: config.server.body_limit_bytes,
            body_read_timeout: config.server.body_read_timeout(),
            alerts_per_payload: config.server.max_alerts_per_payload,
            max_attempts: config.worker.max_attempts,
            retriage_after: config.runbooks.retriage_after(),
        },
        readiness: Arc::new(crate::server::ready::Readiness::default()),
    };
    // The outbox delivers to Slack / PagerDuty; it keeps going through the grace period (so
    // verdicts finished then still go out) and stops once the workers have.
    let outbox = Outbox::new(
        Arc::clone(&ledger),
        destinations.notifiers,
        config,
        Arc::clone(&metrics),
        format!("{}:{}/outbox", hostname(), std::process::id()),
    )
    .woken_by(Arc::clone(&deliveries_written));
    let outbox_stop = tokio_util::sync::CancellationToken::new();
    let outbox_task = tokio::spawn(outbox.run(outbox_stop.clone()));
    // Slack's buttons (Socket Mode), when slack.app_token is set; stopped with the outbox.
    match crate::notify::slack::actions::from_config(config, Arc::clone(&ledger)) {
        Ok(Some((socket, handler))) => {
            tokio::spawn(socket.run(handler, outbox_stop.clone()));
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "Slack buttons (Socket Mode) are off"),
    }

    let pool = WorkerPool {
        ledger: Arc::clone(&ledger),
        runbooks,
        metrics,
        work_available,
        deliveries_written,
        config: config.worker.clone(),
        owner_prefix: format!("{}:{}", hostname(), std::process::id()),
    };
    let workers = tokio::spawn(pool.run(shutdown.clone()));
    let purge = tokio::spawn(run_retention(
        Arc::clone(&ledger),
        RetentionPolicy::from_config(&config.ledger),
        shutdown.stop_intake.clone(),
    ));

    // The line tests and operators wait for: the actual address (the port may have been 0).
    tracing::info!(listen = %local, "cabal-triage listening");
    match listening {
        Some(tell) => {
            let _ = tell.send(local);
        }
        // In JSON mode stderr carries JSON only: the event above has the address.
        None if config.log.format == LogFormat::Human => {
            eprintln!("cabal-triage listening on {local}")
        }
        None => {}
    }
    let stop = shutdown.stop_intake.clone();
    let limits = server::conn::ConnLimits {
        header_read_timeout: config.server.header_read_timeout(),
        max_connections: config.server.max_connections,
        drain: config.worker.shutdown_grace(),
    };
    server::conn::serve(listener, server::router(state), limits, stop).await;
    let _ = workers.await;
    outbox_stop.cancel();
    let _ = tokio::time::timeout(config.worker.shutdown_grace(), outbox_task).await;
    purge.abort();
    tracing::info!("cabal-triage stopped");
    Ok(())
}

/// On every SIGHUP until intake stops: re-reads the configuration from `source` and puts its
/// secrets in use: the webhook and read secrets, and every destination's token (Slack, PagerDuty,
/// ntfy, Pushover), from their next attempt on. Work in progress is untouched. Other settings
/// take effect at the next start, and the log line says so; a configuration that cannot be read,
/// or that leaves no webhook secret, keeps the secrets in use, and so does a destination secret
/// that the new configuration no longer holds.
async fn reload_secrets_on_hangup(
    auth: Arc<Authenticator>,
    destinations: Vec<Arc<dyn crate::notify::Destination>>,
    source: ConfigSource,
    stop: tokio_util::sync::CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; rotated secrets need a restart");
            return;
        }
    };
    loop {
        tokio::select! {
            received = hangup.recv() => if received.is_none() { return },
            _ = stop.cancelled() => return,
        }
        let reloaded = source().and_then(|config| {
            config
                .auth
                .require_for_serve()
                .map_err(|e| e.to_string())
                .map(|()| config)
        });
        match reloaded {
            Ok(config) => {
                auth.replace(&config.auth);
                let rotations: Vec<_> = destinations
                    .iter()
                    .flat_map(|d| d.rotate_secrets(&config))
                    .collect();
                let named = |wanted: Rotation| {
                    let names: Vec<&str> = rotations
                        .iter()
                        .filter(|(_, r)| *r == wanted)
                        .map(|(name, _)| *name)
                        .collect();
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(",")
                    }
                };
                let kept = named(Rotation::KeptMissing);
                if kept != "none" {
                    tracing::warn!(
                        settings = %kept,
                        "SIGHUP: these destination secrets are no longer configured; the ones in use stay until the next start"
                    );
                }
                tracing::info!(
                    webhook_secrets = config.auth.webhook_tokens.len(),
                    read_secrets = config.auth.read_tokens.len(),
                    rotated = %named(Rotation::Rotated),
                    unchanged = %named(Rotation::Unchanged),
                    "SIGHUP: webhook, read and destination secrets re-read and in use; other settings take effect at the next start"
                );
            }
            Err(error) => tracing::warn!(
                %error,
                "SIGHUP: cannot re-read the configuration; the secrets in use stay"
            ),
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

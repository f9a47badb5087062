//! `cabal-triage healthcheck [--url URL]`: one GET of the service's `/healthz`, exit 0 on a 2xx
//! answer and 1 otherwise. It exists for container health checks: the distroless image has no
//! shell or curl, so ECS runs the binary itself. Without `--url` it asks the port of
//! `CABAL_TRIAGE_LISTEN` (or 9095) on the loopback.

use std::time::Duration;

use super::CliError;

/// The URL asked when `--url` is not given.
pub fn default_url(listen: Option<&str>) -> String {
    let port = listen
        .and_then(|addr| addr.rsplit_once(':'))
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .unwrap_or(9095);
    format!("http://127.0.0.1:{port}/healthz")
}

pub fn run(url: Option<String>, timeout_secs: u64) -> Result<(), CliError> {
    let url =
        url.unwrap_or_else(|| default_url(std::env::var("CABAL_TRIAGE_LISTEN").ok().as_deref()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(timeout_secs))
            .build()
            .map_err(|e| CliError::Runtime(format!("cannot build the HTTP client: {e}")))?;
        let response = client.get(&url).send().await.map_err(|e| {
            CliError::Runtime(format!(
                "healthcheck: {url} did not answer ({e}); is `cabal-triage serve` running and listening there?"
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(CliError::Runtime(format!(
                "healthcheck: {url} answered {status}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::default_url;

    #[test]
    fn default_url_takes_the_port_of_the_listen_address() {
        assert_eq!(
            default_url(Some("0.0.0.0:9200")),
            "http://127.0.0.1:9200/healthz"
        );
        assert_eq!(
            default_url(Some("[::]:9300")),
            "http://127.0.0.1:9300/healthz"
        );
        assert_eq!(default_url(None), "http://127.0.0.1:9095/healthz");
        assert_eq!(
            default_url(Some("nonsense")),
            "http://127.0.0.1:9095/healthz"
        );
    }
}

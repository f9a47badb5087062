//! The WebSocket side of the data channel: connects to the `streamUrl` exactly as ECS returned it
//! (tokio-tungstenite with rustls), sends the OpenDataChannel frame with the token (never logged),
//! then pumps frames through the [`DataChannel`] state machine with retransmission ticks,
//! keep-alive pings, and the deadlines listed in `docs/ecs-exec.md` ("How it works").

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;
use uuid::Uuid;

use super::output::Sentinel;
use super::payloads::{ChannelClosed, OpenDataChannel, CLIENT_VERSION};
use super::session::{CappedOutput, ChannelStats, DataChannel, SessionSettings};
use super::ExecError;
use crate::config::Secret;

/// Timings of one data channel; defaults from the note's recommendations.
#[derive(Debug, Clone)]
pub struct ChannelTimings {
    /// TCP + TLS + WebSocket upgrade.
    pub connect_timeout: Duration,
    /// From OpenDataChannel to the first protocol message.
    pub first_message_timeout: Duration,
    /// WebSocket ping with payload `keepalive`.
    pub ping_interval: Duration,
    /// How often unacknowledged frames are looked at.
    pub retransmit_tick: Duration,
    /// After the sentinel, how long to wait for `channel_closed` before calling it done.
    pub close_grace: Duration,
    /// After refusing KMS, how long to wait for the agent's `channel_closed` text.
    pub kms_grace: Duration,
}

impl Default for ChannelTimings {
    fn default() -> Self {
        ChannelTimings {
            connect_timeout: Duration::from_secs(10),
            first_message_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(60),
            retransmit_tick: Duration::from_millis(100),
            close_grace: Duration::from_secs(15),
            kms_grace: Duration::from_secs(5),
        }
    }
}

/// How a data channel ended, when it did not fail.
#[derive(Debug)]
pub struct ChannelOutcome {
    pub output: CappedOutput,
    /// `channel_closed`'s body; `None` when the session ended by the sentinel grace or the
    /// socket closing after the sentinel.
    pub closed: Option<ChannelClosed>,
    /// The agent's exit code, in the rare sessions that send one.
    pub agent_exit_code: Option<i32>,
    pub customer_message: Option<String>,
    pub stats: ChannelStats,
    pub pings_sent: u64,
}

/// Runs one data channel to its end. `deadline` bounds everything; `sentinel`, when given, lets
/// the channel finish once the command's sentinel line has arrived even if `channel_closed` is
/// slow to come.
pub async fn run_data_channel(
    stream_url: &str,
    token: &Secret,
    settings: SessionSettings,
    timings: &ChannelTimings,
    sentinel: Option<&Sentinel>,
    deadline: Instant,
    deadline_length: Duration,
) -> Result<ChannelOutcome, ExecError> {
    if !(stream_url.starts_with("wss://") || stream_url.starts_with("ws://")) {
        return Err(ExecError::InvalidStreamUrl);
    }
    let request = stream_url
        .into_client_request()
        .map_err(|_| ExecError::InvalidStreamUrl)?;
    let connect_by = deadline.min(Instant::now() + timings.connect_timeout);
    // TLS only for `wss://` (a `ws://` URL, as the test fakes give, needs none).
    let connector = if stream_url.starts_with("wss://") {
        Some(tls_connector()?)
    } else {
        None
    };
    // Nagle off: the channel is small frames that each wait for an answer (acks, the close),
    // which Nagle's algorithm would hold back behind unacknowledged segments.
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(websocket_config()),
        true,
        connector,
    );
    let (mut socket, _) = match tokio::time::timeout_at(connect_by, connect).await {
        Ok(Ok(connected)) => connected,
        Ok(Err(error)) => {
            return Err(ExecError::Connect {
                reason: describe_connect_error(&error),
            })
        }
        Err(_) if connect_by == deadline => {
            return Err(ExecError::Deadline {
                deadline: deadline_length,
                received_bytes: 0,
            })
        }
        Err(_) => {
            return Err(ExecError::Connect {
                reason: format!("no WebSocket upgrade within {:?}", timings.connect_timeout),
            })
        }
    };

    let open = OpenDataChannel {
        message_schema_version: "1.0".into(),
        request_id: Uuid::new_v4().hyphenated().to_string(),
        token_value: token.expose().to_string(),
        client_id: Uuid::new_v4().hyphenated().to_string(),
        client_version: CLIENT_VERSION.into(),
    };
    let text = serde_json::to_string(&open).expect("OpenDataChannel serializes");
    socket
        .send(Message::text(text))
        .await
        .map_err(|e| ExecError::Connect {
            reason: format!("cannot send OpenDataChannel: {e}"),
        })?;

    let started = Instant::now();
    let mut channel = DataChannel::new(settings, started.into_std());
    let mut tick = tokio::time::interval(timings.retransmit_tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping = tokio::time::interval_at(started + timings.ping_interval, timings.ping_interval);
    let mut pings_sent = 0u64;
    let first_message_by = started + timings.first_message_timeout;
    let mut sentinel_seen_at: Option<Instant> = None;
    let mut kms_seen_at: Option<Instant> = None;

    let end = loop {
        let mut outgoing = Vec::new();
        tokio::select! {
            message = socket.next() => {
                match message {
                    Some(Ok(Message::Binary(bytes))) => {
                        outgoing = channel.on_message(&bytes, Instant::now().into_std())?;
                    }
                    Some(Ok(Message::Text(text))) => {
                        outgoing = channel.on_message(text.as_bytes(), Instant::now().into_std())?;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break End::SocketClosed,
                    Some(Ok(_)) => {}
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if now >= deadline {
                    break End::Deadline;
                }
                if !channel.any_message() && now >= first_message_by {
                    break End::FirstMessageTimeout;
                }
                if let Some(at) = sentinel_seen_at {
                    if now >= at + timings.close_grace {
                        break End::SentinelGrace;
                    }
                }
                if let Some(at) = kms_seen_at {
                    if now >= at + timings.kms_grace {
                        break End::KmsGrace;
                    }
                }
                if let Some(bytes) = channel.poll_retransmit(now.into_std())? {
                    outgoing.push(bytes);
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(b"keepalive".to_vec().into())).await.is_err() {
                    break End::SocketClosed;
                }
                pings_sent += 1;
            }
        }
        let mut send_failed = false;
        for bytes in outgoing {
            if socket.send(Message::binary(bytes)).await.is_err() {
                send_failed = true;
                break;
            }
        }
        if channel.closed().is_some() {
            break End::ChannelClosed;
        }
        if send_failed {
            break End::SocketClosed;
        }
        if sentinel_seen_at.is_none()
            && sentinel.is_some_and(|s| s.exit_status(channel.output().tail()).is_some())
        {
            sentinel_seen_at = Some(Instant::now());
        }
        if kms_seen_at.is_none() && channel.kms_requested() {
            kms_seen_at = Some(Instant::now());
        }
    };

    if end == End::Deadline {
        if let Some(bytes) = channel.interrupt(Instant::now().into_std()) {
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                socket.send(Message::binary(bytes)),
            )
            .await;
        }
    }
    if end != End::SocketClosed {
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            socket.send(Message::Close(Some(close))),
        )
        .await;
    }
    finish(
        channel,
        end,
        sentinel_seen_at.is_some(),
        timings,
        deadline_length,
        pings_sent,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    ChannelClosed,
    SocketClosed,
    Deadline,
    FirstMessageTimeout,
    SentinelGrace,
    KmsGrace,
}

fn finish(
    channel: DataChannel,
    end: End,
    sentinel_seen: bool,
    timings: &ChannelTimings,
    deadline_length: Duration,
    pings_sent: u64,
) -> Result<ChannelOutcome, ExecError> {
    let received_bytes = channel.output().total();
    if channel.kms_requested() {
        return Err(ExecError::KmsRequested {
            agent_output: channel
                .closed()
                .map(|c| c.output.clone())
                .filter(|o| !o.is_empty()),
        });
    }
    match end {
        End::Deadline => {
            return Err(ExecError::Deadline {
                deadline: deadline_length,
                received_bytes,
            })
        }
        End::FirstMessageTimeout => {
            return Err(ExecError::FirstMessageTimeout(
                timings.first_message_timeout,
            ))
        }
        End::SocketClosed if !sentinel_seen => {
            return Err(if channel.any_message() {
                ExecError::ConnectionLost { received_bytes }
            } else {
                ExecError::TokenRejected
            });
        }
        End::ChannelClosed if !sentinel_seen => {
            let output = channel.closed().map(|c| c.output.as_str()).unwrap_or("");
            if !output.trim().is_empty() {
                return Err(ExecError::agent_error(output));
            }
        }
        _ => {}
    }
    let closed = channel.closed().cloned();
    let agent_exit_code = channel.agent_exit_code();
    let customer_message = channel.customer_message().map(str::to_string);
    let stats = channel.stats();
    Ok(ChannelOutcome {
        output: channel.into_output(),
        closed,
        agent_exit_code,
        customer_message,
        stats,
        pings_sent,
    })
}

/// The data channel's frames are small (at most 1024 output bytes plus a 120-byte header), but
/// tungstenite's default read buffer is 128 KiB, zero-filled on every read and, being past
/// malloc's mmap threshold, mapped and faulted in afresh for every session: with dozens of
/// sessions at once that was the largest CPU cost of the exec probe. 16 KiB still takes a dozen
/// frames per read; a larger frame grows the buffer as needed.
const READ_BUFFER_BYTES: usize = 16 * 1024;

fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES)
}

/// TLS for `wss://`: rustls with the aws-lc-rs provider named explicitly (so it does not depend
/// on which rustls features other crates turn on) and the Mozilla roots bundled by webpki-roots
/// (so minimal container images without a CA bundle work). Built once per process, not per
/// session (the root store and provider are the same for every session).
fn tls_connector() -> Result<Connector, ExecError> {
    static CONNECTOR: OnceLock<Result<Connector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(build_tls_connector)
        .clone()
        .map_err(|reason| ExecError::Connect { reason })
}

fn build_tls_connector() -> Result<Connector, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// A connect error for an operator; the URL (which carries no secret, but is long) is left out.
fn describe_connect_error(error: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::Http(response) => format!(
            "the WebSocket upgrade was refused with HTTP {}",
            response.status()
        ),
        Error::Io(io) => format!("network error: {io}"),
        Error::Tls(tls) => format!("TLS error: {tls}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_configured_without_a_process_wide_provider() {
        assert!(matches!(tls_connector(), Ok(Connector::Rustls(_))));
    }

    #[tokio::test]
    async fn refuses_urls_that_are_not_websockets() {
        let result = run_data_channel(
            "https://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/x",
            &Secret::new("token"),
            SessionSettings::default(),
            &ChannelTimings::default(),
            None,
            Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(result, Err(ExecError::InvalidStreamUrl)));
    }

    #[tokio::test]
    async fn a_refused_upgrade_is_a_connect_error() {
        // A loopback port with an HTTP server that is not a WebSocket endpoint.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = [0u8; 1024];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let result = run_data_channel(
            &format!("ws://{addr}/v1/data-channel/s"),
            &Secret::new("token"),
            SessionSettings::default(),
            &ChannelTimings::default(),
            None,
            Instant::now() + Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .await;
        match result {
            Err(ExecError::Connect { reason }) => assert!(reason.contains("403"), "{reason}"),
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
}

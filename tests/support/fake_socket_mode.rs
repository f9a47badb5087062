//! A fake Slack Socket Mode server on 127.0.0.1: a WebSocket server that greets each connection
//! with `hello` (with an `approximate_connection_time`), sends the envelopes a test asks for
//! (`block_actions` interactions, `disconnect`) on the newest connection, and records every
//! acknowledgement with the time it took, as Slack would judge it (3 s at most).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct State {
    connections: usize,
    /// Envelopes sent and not yet acknowledged: id, when.
    sent: Vec<(String, Instant)>,
    /// Acknowledged envelopes: id, how long the ack took.
    acks: Vec<(String, Duration)>,
    /// Frames that were not a valid acknowledgement.
    unexpected: Vec<String>,
    current: Option<mpsc::UnboundedSender<String>>,
    next_envelope: usize,
}

#[derive(Clone)]
pub struct FakeSocketMode {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeSocketMode {
    /// `connection_time_secs`: what `hello` announces as the connection's lifetime.
    pub async fn start(connection_time_secs: u64) -> FakeSocketMode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/link", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(socket) = tokio_tungstenite::accept_async(stream).await else {
                    continue;
                };
                let (tx, mut rx) = mpsc::unbounded_channel::<String>();
                {
                    let mut state = shared.lock().unwrap();
                    state.connections += 1;
                    state.current = Some(tx);
                }
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let (mut sink, mut stream) = socket.split();
                    let hello = json!({"type": "hello", "num_connections": 1,
                        "debug_info": {"host": "fake", "approximate_connection_time": connection_time_secs},
                        "connection_info": {"app_id": "A1"}});
                    if sink.send(Message::text(hello.to_string())).await.is_err() {
                        return;
                    }
                    loop {
                        tokio::select! {
                            out = rx.recv() => match out {
                                Some(text) => {
                                    let disconnect = text.contains("\"disconnect\"");
                                    if sink.send(Message::text(text)).await.is_err() { return; }
                                    if disconnect {
                                        // Slack closes a little after asking.
                                        tokio::time::sleep(Duration::from_millis(200)).await;
                                        let _ = sink.close().await;
                                        return;
                                    }
                                }
                                None => return,
                            },
                            frame = stream.next() => match frame {
                                Some(Ok(Message::Text(text))) => record_ack(&state, &text),
                                Some(Ok(_)) => {}
                                _ => return,
                            },
                        }
                    }
                });
            }
        });
        FakeSocketMode { url, state }
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Sends an `interactive` envelope with this payload on the newest connection; its id.
    pub fn send_interactive(&self, payload: Value) -> String {
        let mut state = self.state.lock().unwrap();
        state.next_envelope += 1;
        let id = format!("env-{}", state.next_envelope);
        let envelope = json!({"envelope_id": id, "type": "interactive",
            "accepts_response_payload": false, "payload": payload});
        state.sent.push((id.clone(), Instant::now()));
        state
            .current
            .as_ref()
            .expect("a connection")
            .send(envelope.to_string())
            .unwrap();
        id
    }

    /// Asks the client to reconnect, then closes the connection.
    pub fn send_disconnect(&self) {
        let state = self.state.lock().unwrap();
        let envelope = json!({"type": "disconnect", "reason": "refresh_requested",
            "debug_info": {"host": "fake"}});
        state
            .current
            .as_ref()
            .expect("a connection")
            .send(envelope.to_string())
            .unwrap();
    }

    /// How long the acknowledgement of `envelope_id` took, once it came.
    pub fn ack_of(&self, envelope_id: &str) -> Option<Duration> {
        let state = self.state.lock().unwrap();
        state
            .acks
            .iter()
            .find(|(id, _)| id == envelope_id)
            .map(|(_, took)| *took)
    }

    pub fn unexpected(&self) -> Vec<String> {
        self.state.lock().unwrap().unexpected.clone()
    }
}

fn record_ack(state: &Mutex<State>, text: &str) {
    let mut state = state.lock().unwrap();
    let id = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["envelope_id"].as_str().map(str::to_string));
    let sent = id
        .as_ref()
        .and_then(|id| state.sent.iter().position(|(sent, _)| sent == id));
    match (id, sent) {
        (Some(id), Some(at)) => {
            let (_, when) = state.sent.remove(at);
            state.acks.push((id, when.elapsed()));
        }
        _ => state.unexpected.push(text.chars().take(200).collect()),
    }
}

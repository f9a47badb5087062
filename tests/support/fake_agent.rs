//! A fake agent side of the SSM data channel (MGS + agent), on 127.0.0.1 over plain `ws://`,
//! following the protocol as `docs/ecs-exec.md` describes the client. It checks the client's frames more strictly than the real
//! agent, runs the command it was given (split like the agent does, executed without a shell,
//! output with CR LF as a pty gives it), sends the output in frames (in order or not, duplicated,
//! corrupted, slowed down), waits for acknowledgements and retransmits what is not acknowledged,
//! optionally asks for a handshake (KMS variant included), and ends with `channel_closed` in
//! either header shape. Violations of the protocol by the client are recorded for the tests.

#![allow(dead_code, clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cabal_triage::aws::exec::codec::{
    decode, encode, encode_with_shape, flags, Frame, HeaderShape, MessageType, PayloadType,
};
use cabal_triage::aws::exec::payloads::{Acknowledge, HandshakeResponse};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[path = "fake_agent_prepared.rs"]
mod prepared;
pub use prepared::PreparedOutputs;

/// How the fake sends the output frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Sequential,
    /// Frame 1 before frame 0, the rest in order.
    SwapFirstTwo,
    /// Last frame first.
    Reversed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    None,
    /// SessionType only (NonInteractiveCommands style).
    SessionType,
    /// SessionType + KMSEncryption.
    Kms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// Accepts OpenDataChannel and never sends anything.
    Silent,
    /// Drops the TCP connection (no close frame) after sending this many output frames.
    DropAfterFrames(usize),
}

/// One session's script.
#[derive(Debug, Clone)]
pub struct AgentScript {
    /// Most output bytes per frame (the agent's is 1024).
    pub frame_size: usize,
    pub order: Order,
    /// Send every output frame twice.
    pub duplicate: bool,
    /// Send the first output frame with a wrong digest; retransmission sends a good copy.
    pub corrupt_first: bool,
    /// Ignore the client's first acknowledgement (a lost ack): the frame is sent again.
    pub ignore_first_ack: bool,
    /// Do not acknowledge the client's input during this long after the first one arrives.
    pub withhold_input_ack: Duration,
    pub handshake: Handshake,
    pub start_publication: bool,
    pub behaviour: Behaviour,
    pub closed_shape: HeaderShape,
    /// `channel_closed` Output (empty on a normal end).
    pub closed_output: String,
    /// Retransmission timeout of the fake.
    pub rto: Duration,
    /// Delay before each output frame (benchmarks, concurrency tests).
    pub latency: Duration,
    /// Answer commands from outputs captured before the run instead of spawning a process per
    /// session (the latency benchmark); a command not in the table is still run for real.
    pub prepared: Option<Arc<PreparedOutputs>>,
}

impl Default for AgentScript {
    fn default() -> Self {
        AgentScript {
            frame_size: 1024,
            order: Order::Sequential,
            duplicate: false,
            corrupt_first: false,
            ignore_first_ack: false,
            withhold_input_ack: Duration::ZERO,
            handshake: Handshake::None,
            start_publication: false,
            behaviour: Behaviour::Normal,
            closed_shape: HeaderShape::Standard,
            closed_output: String::new(),
            rto: Duration::from_millis(50),
            latency: Duration::ZERO,
            prepared: None,
        }
    }
}

/// What ECS told the fake to run.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    pub token: String,
    pub command: String,
    pub script: AgentScript,
    /// Environment of the command (the fake ECS names the task and container here, so one
    /// configured command can print per-tier output in tests).
    pub env: Vec<(String, String)>,
}

/// What happened in one session, for the tests.
#[derive(Debug, Clone, Default)]
pub struct SessionRecord {
    pub session_id: String,
    /// Path and query of the WebSocket upgrade, as received.
    pub request_target: String,
    pub open_data_channel: Option<serde_json::Value>,
    pub token_accepted: bool,
    /// Output sequence numbers the client acknowledged, in arrival order (duplicates included).
    pub acked: Vec<i64>,
    /// Client input: (seq, payload type, payload), first arrival only.
    pub inputs: Vec<(i64, u32, Vec<u8>)>,
    pub input_retransmissions: u64,
    pub output_frames_sent: u64,
    pub pings: u64,
    pub violations: Vec<String>,
    /// The command's output came from `AgentScript::prepared` (no process was spawned).
    pub prepared_output: bool,
    pub finished: bool,
    /// When the WebSocket upgrade was accepted and when the session ended (timelines).
    pub opened_at: Option<Instant>,
    pub finished_at: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    plans: HashMap<String, SessionPlan>,
    records: Vec<SessionRecord>,
    active: usize,
    peak_active: usize,
}

/// The fake server; cheap to clone.
#[derive(Clone)]
pub struct FakeAgent {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl FakeAgent {
    pub async fn start() -> FakeAgent {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let agent = FakeAgent {
            addr,
            shared: Arc::default(),
        };
        let server = agent.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let agent = server.clone();
                tokio::spawn(async move { agent.serve(stream).await });
            }
        });
        agent
    }

    /// Registers a session; returns the stream URL (with `/`, `+`, `=` and `%2B` in the query,
    /// to check the client keeps it byte for byte).
    pub fn register(&self, session_id: &str, plan: SessionPlan) -> String {
        self.shared
            .lock()
            .unwrap()
            .plans
            .insert(session_id.to_string(), plan);
        format!("ws://{}{}", self.addr, Self::request_target_for(session_id))
    }

    pub fn request_target_for(session_id: &str) -> String {
        format!(
            "/v1/data-channel/{session_id}?role=publish_subscribe&cell-number=AAEAAf%2Bz/+Kw9A=="
        )
    }

    pub fn records(&self) -> Vec<SessionRecord> {
        self.shared.lock().unwrap().records.clone()
    }

    pub fn peak_concurrent_sessions(&self) -> usize {
        self.shared.lock().unwrap().peak_active
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut SessionRecord)) {
        f(&mut self.shared.lock().unwrap().records[index]);
    }

    async fn serve(&self, stream: tokio::net::TcpStream) {
        let mut target = String::new();
        let callback = |request: &Request, response: Response| {
            target = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            Ok(response)
        };
        // Like the agent's Go stack: no Nagle. And a read buffer sized for this protocol's small
        // frames: tungstenite's default (128 KiB, zero-filled on every read) costs more CPU per
        // session than everything else the fake does, which the latency benchmark would measure.
        let _ = stream.set_nodelay(true);
        let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        let Ok(mut socket) =
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
        else {
            return;
        };
        let session_id = target
            .split('?')
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let plan = self.shared.lock().unwrap().plans.get(&session_id).cloned();
        let index = {
            let mut shared = self.shared.lock().unwrap();
            shared.records.push(SessionRecord {
                session_id: session_id.clone(),
                request_target: target.clone(),
                opened_at: Some(Instant::now()),
                ..Default::default()
            });
            shared.active += 1;
            shared.peak_active = shared.peak_active.max(shared.active);
            shared.records.len() - 1
        };
        let Some(plan) = plan else {
            self.update(index, |r| r.violations.push("unknown session id".into()));
            self.finish(index);
            return;
        };
        if target != Self::request_target_for(&session_id) {
            self.update(index, |r| {
                r.violations.push(format!("stream URL altered: {target}"))
            });
        }

        // First frame: OpenDataChannel, text JSON with the five fields.
        let first = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        let Ok(Some(Ok(Message::Text(text)))) = first else {
            self.update(index, |r| {
                r.violations.push("first frame is not text".into())
            });
            self.finish(index);
            return;
        };
        let open: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        let is_uuid = |key: &str| {
            open[key]
                .as_str()
                .is_some_and(|v| Uuid::parse_str(v).is_ok() && v == v.to_lowercase())
        };
        let mut problems = Vec::new();
        if open["MessageSchemaVersion"] != "1.0" {
            problems.push("MessageSchemaVersion is not \"1.0\"");
        }
        if !is_uuid("RequestId") || !is_uuid("ClientId") {
            problems.push("RequestId/ClientId are not lowercase UUIDs");
        }
        if !open["ClientVersion"].is_string() {
            problems.push("ClientVersion missing");
        }
        let token_ok = open["TokenValue"].as_str() == Some(plan.token.as_str());
        self.update(index, |r| {
            r.open_data_channel = Some(open.clone());
            r.token_accepted = token_ok;
            r.violations.extend(problems.iter().map(|p| p.to_string()));
        });
        if !token_ok {
            // Like the real service: the socket closes without any protocol message.
            self.finish(index);
            return;
        }

        let mut session = AgentSession::new(self.clone(), index, session_id, plan);
        session.run(&mut socket).await;
        self.finish(index);
    }

    fn finish(&self, index: usize) {
        let mut shared = self.shared.lock().unwrap();
        shared.active -= 1;
        shared.records[index].finished = true;
        shared.records[index].finished_at = Some(Instant::now());
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// How often unacknowledged frames are looked at while the session waits for something else.
const RETRANSMIT_TICK: Duration = Duration::from_millis(10);

struct Outgoing {
    bytes: Vec<u8>,
    id: Uuid,
    last_sent: Instant,
}

/// The agent's half of one session.
struct AgentSession {
    agent: FakeAgent,
    index: usize,
    session_id: String,
    plan: SessionPlan,
    next_seq: i64,
    /// Our stream frames not yet acknowledged, by seq.
    unacked: BTreeMap<i64, Outgoing>,
    /// Ids of every stream frame we sent, by seq (for checking the client's acks).
    sent_ids: HashMap<i64, Uuid>,
    ignored_first_ack: bool,
    expected_input: i64,
    inputs_seen: HashMap<i64, Vec<u8>>,
    first_input_at: Option<Instant>,
    handshake_done: bool,
    handshake_response: Option<HandshakeResponse>,
    socket_closed: bool,
}

impl AgentSession {
    fn new(agent: FakeAgent, index: usize, session_id: String, plan: SessionPlan) -> Self {
        let handshake_done = plan.script.handshake == Handshake::None;
        AgentSession {
            agent,
            index,
            session_id,
            plan,
            next_seq: 0,
            unacked: BTreeMap::new(),
            sent_ids: HashMap::new(),
            ignored_first_ack: false,
            expected_input: 0,
            inputs_seen: HashMap::new(),
            first_input_at: None,
            handshake_done,
            handshake_response: None,
            socket_closed: false,
        }
    }

    fn violation(&self, text: String) {
        self.agent.update(self.index, |r| r.violations.push(text));
    }

    async fn run(&mut self, socket: &mut Socket) {
        let script = self.plan.script.clone();
        if script.behaviour == Behaviour::Silent {
            while let Some(Ok(message)) = socket.next().await {
                self.on_client_message(socket, message).await;
            }
            return;
        }
        if script.start_publication {
            let notice = control_frame(MessageType::StartPublication, b"{}".to_vec());
            let _ = socket.send(Message::binary(encode(&notice))).await;
        }
        match script.handshake {
            Handshake::None => {}
            kind => {
                let mut actions = vec![serde_json::json!({"ActionType": "SessionType",
                    "ActionParameters": {"SessionType": "InteractiveCommands", "Properties": null}})];
                if kind == Handshake::Kms {
                    actions.push(serde_json::json!({"ActionType": "KMSEncryption",
                        "ActionParameters": {"KMSKeyId": "arn:aws:kms:us-east-1:111122223333:key/test",
                                             "Challenge": "AAECAwQFBgcICQoLDA0ODw=="}}));
                }
                let body = serde_json::json!({"AgentVersion": "3.3.0.0",
                                              "RequestedClientActions": actions});
                self.send_stream(
                    socket,
                    PayloadType::HandshakeRequest,
                    body.to_string().into_bytes(),
                    false,
                )
                .await;
                // Wait for the response (retransmitting the request while unacknowledged).
                if !self
                    .pump_until(socket, Duration::from_secs(5), |s| {
                        s.handshake_response.is_some()
                    })
                    .await
                {
                    return;
                }
                let response = self.handshake_response.clone().unwrap();
                let statuses: Vec<u32> = response
                    .processed_client_actions
                    .iter()
                    .map(|a| a.action_status)
                    .collect();
                if statuses.iter().any(|s| *s != 1) {
                    let errors = response
                        .processed_client_actions
                        .iter()
                        .filter(|a| a.action_status != 1)
                        .map(|a| {
                            format!(
                                "{} failed on client with status {} error: {}",
                                a.action_type, a.action_status, a.error
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    let output = format!("\r\n----------ERROR-------\r\nEncountered error while initiating handshake. {errors}\r\n");
                    self.send_closed(socket, &output, script.closed_shape).await;
                    return;
                }
                self.send_stream(
                    socket,
                    PayloadType::HandshakeComplete,
                    br#"{"HandshakeTimeToComplete":1500000,"CustomerMessage":""}"#.to_vec(),
                    false,
                )
                .await;
                self.handshake_done = true;
            }
        }

        let prepared = script
            .prepared
            .as_ref()
            .and_then(|table| table.answer(&self.plan.command, &self.plan.env));
        let output = match prepared {
            Some(output) => {
                self.agent.update(self.index, |r| r.prepared_output = true);
                output
            }
            None => {
                // The command runs while the session keeps answering the client (acks, input).
                let command = run_command(self.plan.command.clone(), self.plan.env.clone());
                match self.pump_while(socket, command).await {
                    Some(output) => output,
                    None => return,
                }
            }
        };
        let chunks: Vec<Vec<u8>> = output
            .chunks(script.frame_size.max(1))
            .map(<[u8]>::to_vec)
            .collect();
        let first_seq = self.next_seq;
        let mut frames: Vec<(i64, Vec<u8>)> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| (first_seq + i as i64, chunk))
            .collect();
        match script.order {
            Order::Sequential => {}
            Order::SwapFirstTwo if frames.len() >= 2 => frames.swap(0, 1),
            Order::SwapFirstTwo => {}
            Order::Reversed => frames.reverse(),
        }
        self.next_seq += frames.len() as i64;
        for (n, (seq, chunk)) in frames.into_iter().enumerate() {
            if let Behaviour::DropAfterFrames(limit) = script.behaviour {
                if n >= limit {
                    return; // drops the TCP connection without a close frame
                }
            }
            if !script.latency.is_zero() {
                // Exactly the latency (a timer, not polling), answering the client meanwhile.
                self.pump_while(socket, tokio::time::sleep(script.latency))
                    .await;
            }
            let corrupt = script.corrupt_first && n == 0;
            self.send_stream_with_seq(socket, seq, PayloadType::Output, chunk, corrupt)
                .await;
            if script.duplicate {
                let bytes = self.unacked.get(&seq).map(|o| o.bytes.clone());
                if let Some(bytes) = bytes {
                    let _ = socket.send(Message::binary(bytes)).await;
                }
            }
            // Read what is there (acks) without waiting.
            self.pump_for(socket, Duration::ZERO).await;
        }
        if let Behaviour::DropAfterFrames(_) = script.behaviour {
            return;
        }
        // Like the agent: wait (at most 2 s) for every output frame to be acknowledged.
        self.pump_until(socket, Duration::from_secs(2), |s| s.unacked.is_empty())
            .await;
        if !self.unacked.is_empty() {
            self.violation(format!(
                "output not acknowledged: {:?}",
                self.unacked.keys().collect::<Vec<_>>()
            ));
        }
        let closed_output = script.closed_output.clone();
        self.send_closed(socket, &closed_output, script.closed_shape)
            .await;
        // Give the client a moment to close its side.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(message)) = socket.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }

    async fn send_closed(&mut self, socket: &mut Socket, output: &str, shape: HeaderShape) {
        let body = serde_json::json!({
            "MessageId": Uuid::new_v4().to_string(), "CreatedDate": "1700000000000",
            "DestinationId": "ecs:demo_t1_r1", "SessionId": self.session_id,
            "MessageType": "channel_closed", "SchemaVersion": 1, "Output": output});
        let frame = control_frame(MessageType::ChannelClosed, body.to_string().into_bytes());
        let _ = socket
            .send(Message::binary(encode_with_shape(&frame, shape)))
            .await;
    }

    async fn send_stream(
        &mut self,
        socket: &mut Socket,
        payload_type: PayloadType,
        payload: Vec<u8>,
        corrupt: bool,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.send_stream_with_seq(socket, seq, payload_type, payload, corrupt)
            .await;
    }

    async fn send_stream_with_seq(
        &mut self,
        socket: &mut Socket,
        seq: i64,
        payload_type: PayloadType,
        payload: Vec<u8>,
        corrupt: bool,
    ) {
        let id = Uuid::new_v4();
        let frame = Frame {
            message_type: MessageType::OutputStreamData,
            schema_version: 1,
            created_date: now_millis(),
            sequence_number: seq,
            flags: if seq == 0 { flags::SYN } else { flags::NONE },
            message_id: id,
            payload_type,
            payload,
        };
        let bytes = encode(&frame);
        let mut wire = bytes.clone();
        if corrupt {
            let last = wire.len() - 1;
            wire[last] ^= 0x55;
        }
        self.sent_ids.insert(seq, id);
        self.unacked.insert(
            seq,
            Outgoing {
                bytes,
                id,
                last_sent: Instant::now(),
            },
        );
        self.agent.update(self.index, |r| r.output_frames_sent += 1);
        let _ = socket.send(Message::binary(wire)).await;
    }

    /// Reads and answers the client (retransmitting on the way) until `work` is done, and not a
    /// moment longer; `None` when the socket ended first.
    async fn pump_while<T>(
        &mut self,
        socket: &mut Socket,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(RETRANSMIT_TICK);
        loop {
            tokio::select! {
                done = &mut work => return Some(done),
                message = socket.next() => match message {
                    Some(Ok(message)) => self.on_client_message(socket, message).await,
                    Some(Err(_)) | None => {
                        self.socket_closed = true;
                        return None;
                    }
                },
                _ = tick.tick() => self.retransmit(socket).await,
            }
        }
    }

    /// Reads and answers the client for `duration`, retransmitting on the way.
    async fn pump_for(&mut self, socket: &mut Socket, duration: Duration) {
        self.pump_until(socket, duration, |_| false).await;
    }

    /// Reads and answers the client until `done` or `limit`; false when the socket ended.
    async fn pump_until(
        &mut self,
        socket: &mut Socket,
        limit: Duration,
        done: impl Fn(&Self) -> bool,
    ) -> bool {
        let until = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            self.retransmit(socket).await;
            let wait = until
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_millis(10));
            match tokio::time::timeout(wait, socket.next()).await {
                Ok(Some(Ok(message))) => self.on_client_message(socket, message).await,
                Ok(Some(Err(_))) | Ok(None) => {
                    self.socket_closed = true;
                    return false;
                }
                Err(_) => {}
            }
            if Instant::now() >= until {
                return done(self);
            }
        }
    }

    async fn retransmit(&mut self, socket: &mut Socket) {
        let rto = self.plan.script.rto;
        let now = Instant::now();
        let mut due = Vec::new();
        for outgoing in self.unacked.values_mut() {
            if now.duration_since(outgoing.last_sent) >= rto {
                outgoing.last_sent = now;
                due.push(outgoing.bytes.clone());
            }
        }
        for bytes in due {
            let _ = socket.send(Message::binary(bytes)).await;
        }
    }

    async fn on_client_message(&mut self, socket: &mut Socket, message: Message) {
        let bytes = match message {
            Message::Binary(bytes) => bytes.to_vec(),
            Message::Ping(_) => {
                self.agent.update(self.index, |r| r.pings += 1);
                return;
            }
            Message::Text(_) => {
                self.violation("text frame after OpenDataChannel".into());
                return;
            }
            _ => return,
        };
        if let Err(problem) = check_client_frame(&bytes) {
            self.violation(problem);
            return;
        }
        let frame = decode(&bytes).unwrap().frame;
        match frame.message_type {
            MessageType::Acknowledge => self.on_ack(&frame),
            MessageType::InputStreamData => self.on_input(socket, &frame, &bytes).await,
            other => self.violation(format!("client sent {other:?}")),
        }
    }

    fn on_ack(&mut self, frame: &Frame) {
        if (frame.sequence_number, frame.flags, frame.payload_type) != (0, 3, PayloadType::Null) {
            self.violation(format!(
                "ack header seq {} flags {} payload type {:?}, expected 0, 3, Null",
                frame.sequence_number, frame.flags, frame.payload_type
            ));
        }
        let Ok(ack) = serde_json::from_slice::<Acknowledge>(&frame.payload) else {
            self.violation("ack body is not the expected JSON".into());
            return;
        };
        let seq = ack.sequence_number;
        match self.sent_ids.get(&seq) {
            Some(id) if id.hyphenated().to_string() == ack.message_id => {}
            Some(id) => self.violation(format!(
                "ack of seq {seq} names {} instead of {id}",
                ack.message_id
            )),
            None => self.violation(format!("ack of seq {seq}, which was never sent")),
        }
        if ack.message_type != "output_stream_data" || !ack.is_sequential {
            self.violation(format!("ack body {ack:?}"));
        }
        self.agent.update(self.index, |r| r.acked.push(seq));
        if self.plan.script.ignore_first_ack && !self.ignored_first_ack {
            self.ignored_first_ack = true;
            return;
        }
        self.unacked.remove(&seq);
    }

    async fn on_input(&mut self, socket: &mut Socket, frame: &Frame, bytes: &[u8]) {
        let seq = frame.sequence_number;
        if frame.flags != 0 {
            self.violation(format!("input seq {seq} has flags {}", frame.flags));
        }
        if let Some(previous) = self.inputs_seen.get(&seq) {
            if previous != bytes {
                self.violation(format!(
                    "retransmission of input seq {seq} differs from the original"
                ));
            }
            self.agent
                .update(self.index, |r| r.input_retransmissions += 1);
        } else {
            if seq != self.expected_input {
                self.violation(format!("input seq {seq}, expected {}", self.expected_input));
            }
            if !self.handshake_done
                && !matches!(
                    frame.payload_type,
                    PayloadType::HandshakeResponse | PayloadType::EncChallengeResponse
                )
            {
                self.violation(format!(
                    "{:?} input before the handshake completed",
                    frame.payload_type
                ));
            }
            self.expected_input = seq + 1;
            self.inputs_seen.insert(seq, bytes.to_vec());
            let record = (seq, frame.payload_type as u32, frame.payload.clone());
            self.agent.update(self.index, |r| r.inputs.push(record));
            if frame.payload_type == PayloadType::HandshakeResponse {
                match serde_json::from_slice(&frame.payload) {
                    Ok(response) => self.handshake_response = Some(response),
                    Err(e) => self.violation(format!("HandshakeResponse is not valid: {e}")),
                }
            }
        }
        let first = *self.first_input_at.get_or_insert_with(Instant::now);
        if first.elapsed() < self.plan.script.withhold_input_ack {
            return;
        }
        let body = Acknowledge {
            message_type: "input_stream_data".into(),
            message_id: frame.message_id.hyphenated().to_string(),
            sequence_number: seq,
            is_sequential: true,
        };
        let ack = Frame {
            message_type: MessageType::Acknowledge,
            schema_version: 1,
            created_date: now_millis(),
            sequence_number: 0,
            flags: flags::ACK,
            message_id: Uuid::new_v4(),
            payload_type: PayloadType::Null,
            payload: serde_json::to_vec(&body).unwrap(),
        };
        let _ = socket.send(Message::binary(encode(&ack))).await;
    }
}

/// Strict checks of a client frame, on the raw bytes (independent of the crate's decoder).
fn check_client_frame(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 120 {
        return Err(format!("client frame of {} bytes", bytes.len()));
    }
    let header_length = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
    if header_length != 116 {
        return Err(format!("client frame with header length {header_length}"));
    }
    let type_field = &bytes[4..36];
    let name_len = type_field.iter().position(|b| *b == b' ').unwrap_or(32);
    if type_field[name_len..].iter().any(|b| *b != b' ') || name_len == 0 {
        return Err("message type not space-padded".into());
    }
    let schema = u32::from_be_bytes(bytes[36..40].try_into().unwrap());
    if schema != 1 {
        return Err(format!("schema version {schema}"));
    }
    let created = u64::from_be_bytes(bytes[40..48].try_into().unwrap());
    if now_millis().abs_diff(created) > 60_000 {
        return Err(format!("created date {created} is not now"));
    }
    let payload_length = u32::from_be_bytes(bytes[116..120].try_into().unwrap()) as usize;
    if bytes.len() != 120 + payload_length {
        return Err(format!(
            "payload length {payload_length} in a frame of {}",
            bytes.len()
        ));
    }
    use sha2::Digest;
    if sha2::Sha256::digest(&bytes[120..]).as_slice() != &bytes[80..112] {
        return Err("client frame digest mismatch".into());
    }
    // Message id halves must be swapped: a v4 UUID has its version nibble in byte 6 of the RFC
    // order, which is wire byte 14.
    if bytes[64 + 14] >> 4 != 4 {
        return Err("message id halves not swapped (or not a v4 UUID)".into());
    }
    Ok(())
}

fn control_frame(message_type: MessageType, payload: Vec<u8>) -> Frame {
    Frame {
        message_type,
        schema_version: 1,
        created_date: now_millis(),
        sequence_number: 0,
        flags: flags::NONE,
        message_id: Uuid::new_v4(),
        payload_type: PayloadType::Null,
        payload,
    }
}

/// Runs the command as the agent does in container mode: split with shell-like rules and
/// executed without a shell; stdout and stderr merged; LF turned into CR LF as a pty does.
async fn run_command(command: String, env: Vec<(String, String)>) -> Vec<u8> {
    let Some(words) = shlex::split(&command) else {
        return b"Unable to start command: bad quoting\r\n".to_vec();
    };
    let Some((program, args)) = words.split_first() else {
        return Vec::new();
    };
    // One pipe for stdout and stderr, so they interleave as they would on a pty.
    let (program, args) = (program.clone(), args.to_vec());
    let merged = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let (mut reader, writer) = std::io::pipe()?;
        let mut child = std::process::Command::new(&program)
            .args(&args)
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .spawn()?;
        let mut merged = Vec::new();
        reader.read_to_end(&mut merged)?;
        child.wait()?;
        Ok(merged)
    })
    .await
    .unwrap();
    let merged = match merged {
        Ok(merged) => merged,
        Err(e) => return format!("Unable to start command: {e}\r\n").into_bytes(),
    };
    let mut pty = Vec::with_capacity(merged.len() + merged.len() / 16);
    for byte in merged {
        if byte == b'\n' {
            pty.push(b'\r');
        }
        pty.push(byte);
    }
    pty
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

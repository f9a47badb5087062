//! The data-channel state machine, without I/O: it takes received frames and the clock, and says
//! what to send. `client.rs` moves the bytes. Sequencing and acknowledgement rules as AWS's plugin follows them, stricter
//! than AWS's plugin: early frames are buffered until the gap fills, duplicates are acknowledged
//! again (so a lost acknowledgement is repaired), and output is kept byte-exact.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::codec::{self, flags, Frame, MessageType, PayloadType, SCHEMA_VERSION};
use super::payloads::{self, Acknowledge, ChannelClosed, HandshakeComplete, TerminalSize};
use super::ExecError;

/// Most out-of-order frames kept while waiting for a gap to fill (the plugin keeps 10000).
pub const MAX_EARLY_FRAMES: usize = 10_000;
/// How much of the end of the output is always kept, past the cap, to find the exit sentinel.
pub const TAIL_BYTES: usize = 512;
const INITIAL_RTO: Duration = Duration::from_millis(200);
const INITIAL_RTT: Duration = Duration::from_millis(100);
const MAX_RTO: Duration = Duration::from_secs(1);
const MIN_RTO_VARIANCE: Duration = Duration::from_millis(10);

/// What the state machine needs to know.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Output bytes kept; the rest is counted and dropped (`truncated`).
    pub output_cap: usize,
    /// Size message sent once the session is established; none when `None`.
    pub terminal_size: Option<TerminalSize>,
    /// Give up when the agent acknowledges nothing of ours for this long (not while paused).
    pub retransmit_give_up: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            output_cap: 64 * 1024,
            terminal_size: Some(TerminalSize {
                cols: 200,
                rows: 50,
            }),
            retransmit_give_up: Duration::from_secs(30),
        }
    }
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing from the agent yet.
    AwaitingFirst,
    /// HandshakeRequest answered, waiting for HandshakeComplete.
    Handshaking,
    /// Output flowing; input (Size, Ctrl-C) may be sent.
    Established,
}

/// Output bytes, capped, plus the last bytes whatever the cap.
#[derive(Debug, Clone, Default)]
pub struct CappedOutput {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
    cap: usize,
}

impl CappedOutput {
    pub fn new(cap: usize) -> Self {
        CappedOutput {
            cap,
            ..Default::default()
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.cap.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > TAIL_BYTES {
            self.tail.drain(..self.tail.len() - TAIL_BYTES);
        }
    }

    /// The first `cap` bytes, in order.
    pub fn head(&self) -> &[u8] {
        &self.head
    }
    /// The last bytes received (up to `TAIL_BYTES`), kept past the cap.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }
    /// Bytes received in all.
    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn truncated(&self) -> bool {
        self.total > self.head.len() as u64
    }
}

struct Pending {
    sequence_number: i64,
    bytes: Vec<u8>,
    last_sent: Instant,
}

/// Classic RTO estimate (plugin constants).
struct RttEstimator {
    rtt: Duration,
    variation: Duration,
    rto: Duration,
}

impl RttEstimator {
    fn new() -> Self {
        RttEstimator {
            rtt: INITIAL_RTT,
            variation: Duration::ZERO,
            rto: INITIAL_RTO,
        }
    }

    fn sample(&mut self, sample: Duration) {
        let diff = self.rtt.abs_diff(sample);
        self.variation = self.variation * 3 / 4 + diff / 4;
        self.rtt = self.rtt * 7 / 8 + sample / 8;
        self.rto = (self.rtt + MIN_RTO_VARIANCE.max(self.variation * 4)).min(MAX_RTO);
    }
}

/// Counters for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Frames refused by the decoder (not acknowledged).
    pub rejected_frames: u64,
    /// Duplicate output frames (acknowledged again, not delivered again).
    pub duplicate_frames: u64,
    /// Frames that arrived before a gap and waited in the buffer.
    pub early_frames: u64,
    /// Our own frames sent again.
    pub retransmissions: u64,
}

/// The client side of one data channel.
pub struct DataChannel {
    settings: SessionSettings,
    phase: Phase,
    expected: i64,
    early: BTreeMap<i64, Frame>,
    next_input_seq: i64,
    unacked: VecDeque<Pending>,
    rtt: RttEstimator,
    progress_at: Instant,
    paused: bool,
    output: CappedOutput,
    closed: Option<ChannelClosed>,
    kms_requested: bool,
    any_message: bool,
    customer_message: Option<String>,
    agent_exit_code: Option<i32>,
    stats: ChannelStats,
}

impl DataChannel {
    pub fn new(settings: SessionSettings, now: Instant) -> Self {
        let output = CappedOutput::new(settings.output_cap);
        DataChannel {
            settings,
            phase: Phase::AwaitingFirst,
            expected: 0,
            early: BTreeMap::new(),
            next_input_seq: 0,
            unacked: VecDeque::new(),
            rtt: RttEstimator::new(),
            progress_at: now,
            paused: false,
            output,
            closed: None,
            kms_requested: false,
            any_message: false,
            customer_message: None,
            agent_exit_code: None,
            stats: ChannelStats::default(),
        }
    }

    /// Handles one received WebSocket message and returns the frames to send, in order.
    pub fn on_message(&mut self, bytes: &[u8], now: Instant) -> Result<Vec<Vec<u8>>, ExecError> {
        let decoded = match codec::decode(bytes) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.stats.rejected_frames += 1;
                tracing::warn!(%error, len = bytes.len(), "ECS Exec: refused a data-channel frame (not acknowledged; the agent will send it again)");
                return Ok(Vec::new());
            }
        };
        if decoded.trailing_bytes > 0 {
            tracing::warn!(
                trailing = decoded.trailing_bytes,
                "ECS Exec: ignored bytes after a frame's payload"
            );
        }
        let frame = decoded.frame;
        let mut send = Vec::new();
        match frame.message_type {
            MessageType::OutputStreamData => {
                self.any_message = true;
                self.on_output(frame, now, &mut send)?;
            }
            MessageType::Acknowledge => {
                self.any_message = true;
                self.on_ack(&frame, now);
            }
            MessageType::ChannelClosed => {
                self.any_message = true;
                let closed = serde_json::from_slice::<ChannelClosed>(&frame.payload)
                    .unwrap_or_else(|error| {
                        tracing::warn!(%error, "ECS Exec: channel_closed body is not the expected JSON");
                        ChannelClosed {
                            output: String::from_utf8_lossy(&frame.payload).into_owned(),
                            ..Default::default()
                        }
                    });
                self.closed = Some(closed);
            }
            MessageType::StartPublication => {
                self.paused = false;
                self.progress_at = now;
                for pending in &mut self.unacked {
                    pending.last_sent = now;
                    self.stats.retransmissions += 1;
                    send.push(pending.bytes.clone());
                }
            }
            MessageType::PausePublication => self.paused = true,
            MessageType::InputStreamData | MessageType::AgentInternal => {
                tracing::debug!("ECS Exec: ignored a message type a client does not expect");
            }
        }
        Ok(send)
    }

    fn on_output(
        &mut self,
        frame: Frame,
        now: Instant,
        send: &mut Vec<Vec<u8>>,
    ) -> Result<(), ExecError> {
        let seq = frame.sequence_number;
        if seq < 0 {
            self.stats.rejected_frames += 1;
            tracing::warn!(
                seq,
                "ECS Exec: refused an output frame with a negative sequence number"
            );
            return Ok(());
        }
        if seq < self.expected {
            self.stats.duplicate_frames += 1;
            send.push(ack_for(&frame));
            return Ok(());
        }
        if seq > self.expected {
            if !self.early.contains_key(&seq) {
                if self.early.len() >= MAX_EARLY_FRAMES {
                    // Not acknowledged: the agent sends it again once the gap has filled.
                    return Ok(());
                }
                self.stats.early_frames += 1;
            }
            send.push(ack_for(&frame));
            self.early.insert(seq, frame);
            return Ok(());
        }
        send.push(ack_for(&frame));
        self.process(frame, now, send)?;
        self.expected += 1;
        while let Some(next) = self.early.remove(&self.expected) {
            self.process(next, now, send)?;
            self.expected += 1;
        }
        Ok(())
    }

    fn process(
        &mut self,
        frame: Frame,
        now: Instant,
        send: &mut Vec<Vec<u8>>,
    ) -> Result<(), ExecError> {
        match frame.payload_type {
            PayloadType::Output | PayloadType::StdErr => {
                if self.phase == Phase::AwaitingFirst {
                    self.establish(now, send);
                }
                self.output.push(&frame.payload);
            }
            PayloadType::HandshakeRequest => {
                let request: payloads::HandshakeRequest = serde_json::from_slice(&frame.payload)
                    .map_err(|e| {
                        ExecError::Protocol(format!("HandshakeRequest is not valid JSON: {e}"))
                    })?;
                let (response, kms) = payloads::answer_handshake(&request);
                self.kms_requested |= kms;
                let body = serde_json::to_vec(&response).expect("handshake response serializes");
                self.send_input(PayloadType::HandshakeResponse, body, now, send);
                if self.phase == Phase::AwaitingFirst {
                    self.phase = Phase::Handshaking;
                }
            }
            PayloadType::HandshakeComplete => {
                let complete: HandshakeComplete =
                    serde_json::from_slice(&frame.payload).unwrap_or_default();
                if !complete.customer_message.is_empty() {
                    tracing::info!(message = %complete.customer_message, "ECS Exec: agent message");
                    self.customer_message = Some(complete.customer_message);
                }
                if self.phase != Phase::Established {
                    self.establish(now, send);
                }
            }
            PayloadType::EncChallengeRequest => {
                self.kms_requested = true;
            }
            PayloadType::ExitCode => {
                let text = String::from_utf8_lossy(&frame.payload);
                self.agent_exit_code = text
                    .trim()
                    .strip_prefix("EXIT_CODE:")
                    .and_then(|n| n.trim().parse().ok());
            }
            other => {
                tracing::debug!(?other, "ECS Exec: ignored an output frame's payload type");
            }
        }
        Ok(())
    }

    fn establish(&mut self, now: Instant, send: &mut Vec<Vec<u8>>) {
        self.phase = Phase::Established;
        if let Some(size) = self.settings.terminal_size {
            let body = serde_json::to_vec(&size).expect("size serializes");
            self.send_input(PayloadType::Size, body, now, send);
        }
    }

    fn on_ack(&mut self, frame: &Frame, now: Instant) {
        let ack: Acknowledge = match serde_json::from_slice(&frame.payload) {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(%error, "ECS Exec: acknowledgement body is not the expected JSON");
                return;
            }
        };
        // Matched by sequence number only, as the plugin and the agent do.
        if let Some(index) = self
            .unacked
            .iter()
            .position(|p| p.sequence_number == ack.sequence_number)
        {
            let pending = self.unacked.remove(index).expect("index is in range");
            self.rtt
                .sample(now.saturating_duration_since(pending.last_sent));
            self.progress_at = now;
        }
    }

    /// Queues and returns a new `input_stream_data` message.
    fn send_input(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
        now: Instant,
        send: &mut Vec<Vec<u8>>,
    ) {
        let frame = Frame {
            message_type: MessageType::InputStreamData,
            schema_version: SCHEMA_VERSION,
            created_date: now_millis(),
            sequence_number: self.next_input_seq,
            flags: flags::NONE,
            message_id: Uuid::new_v4(),
            payload_type,
            payload,
        };
        self.next_input_seq += 1;
        let bytes = codec::encode(&frame);
        if self.unacked.is_empty() {
            self.progress_at = now;
        }
        self.unacked.push_back(Pending {
            sequence_number: frame.sequence_number,
            bytes: bytes.clone(),
            last_sent: now,
        });
        send.push(bytes);
    }

    /// Ctrl-C as keyboard input, to interrupt the command on abort; only once established.
    pub fn interrupt(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.phase != Phase::Established || self.closed.is_some() {
            return None;
        }
        let mut send = Vec::new();
        self.send_input(PayloadType::Output, vec![0x03], now, &mut send);
        send.pop()
    }

    /// Called every ~100 ms: the oldest unacknowledged frame if its RTO has passed.
    pub fn poll_retransmit(&mut self, now: Instant) -> Result<Option<Vec<u8>>, ExecError> {
        if self.paused || self.unacked.is_empty() {
            self.progress_at = now;
            return Ok(None);
        }
        let waited = now.saturating_duration_since(self.progress_at);
        if waited > self.settings.retransmit_give_up {
            return Err(ExecError::RetransmitGaveUp(waited));
        }
        let rto = self.rtt.rto;
        let head = self.unacked.front_mut().expect("not empty");
        if now.saturating_duration_since(head.last_sent) > rto {
            head.last_sent = now;
            self.stats.retransmissions += 1;
            return Ok(Some(head.bytes.clone()));
        }
        Ok(None)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn output(&self) -> &CappedOutput {
        &self.output
    }
    pub fn into_output(self) -> CappedOutput {
        self.output
    }
    /// The `channel_closed` body once it arrived.
    pub fn closed(&self) -> Option<&ChannelClosed> {
        self.closed.as_ref()
    }
    pub fn kms_requested(&self) -> bool {
        self.kms_requested
    }
    /// Whether any protocol message (not counting refused frames) arrived.
    pub fn any_message(&self) -> bool {
        self.any_message
    }
    pub fn customer_message(&self) -> Option<&str> {
        self.customer_message.as_deref()
    }
    /// `EXIT_CODE: n` when the agent sent one (NonInteractiveCommands only; not ECS Exec).
    pub fn agent_exit_code(&self) -> Option<i32> {
        self.agent_exit_code
    }
    pub fn stats(&self) -> ChannelStats {
        self.stats
    }
    /// Our frames not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }
}

/// The acknowledgement of one stream-data frame (header seq 0, flags 3, PayloadType 0).
pub fn ack_for(frame: &Frame) -> Vec<u8> {
    let body = Acknowledge {
        message_type: frame.message_type.as_str().to_string(),
        message_id: frame.message_id.hyphenated().to_string(),
        sequence_number: frame.sequence_number,
        is_sequential: true,
    };
    codec::encode(&Frame {
        message_type: MessageType::Acknowledge,
        schema_version: SCHEMA_VERSION,
        created_date: now_millis(),
        sequence_number: 0,
        flags: flags::ACK,
        message_id: Uuid::new_v4(),
        payload_type: PayloadType::Null,
        payload: serde_json::to_vec(&body).expect("ack serializes"),
    })
}

/// Current time in Unix epoch milliseconds (never zero).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

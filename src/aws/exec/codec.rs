//! Encoding and decoding of the binary data-channel message ("ClientMessage" / "AgentMessage")
//! of AWS's session-manager-plugin (its `message` package): a big-endian header, a 4-byte
//! payload length and the payload. Decoding validates every field and returns an error, never panics, on any input:
//! the bytes come from the network.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Header length the senders write: the offset of the PayloadLength field.
pub const HEADER_LENGTH: u32 = 116;
/// The shorter header (no PayloadType field) that `channel_closed` has been reported to use.
pub const LEGACY_HEADER_LENGTH: u32 = 112;
/// Width of the space-padded MessageType field.
pub const MESSAGE_TYPE_WIDTH: usize = 32;
/// The schema version every sender writes.
pub const SCHEMA_VERSION: u32 = 1;

const TYPE_OFFSET: usize = 4;
const SCHEMA_OFFSET: usize = 36;
const CREATED_OFFSET: usize = 40;
const SEQUENCE_OFFSET: usize = 48;
const FLAGS_OFFSET: usize = 56;
const MESSAGE_ID_OFFSET: usize = 64;
const DIGEST_OFFSET: usize = 80;
const PAYLOAD_TYPE_OFFSET: usize = 112;

/// The message types of the data channel (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    InputStreamData,
    OutputStreamData,
    Acknowledge,
    ChannelClosed,
    StartPublication,
    PausePublication,
    /// Agent-to-MGS and control-channel types (`agent_session_state`, `agent_job`, ...): a client
    /// should never see them, and ignores them without acknowledging.
    AgentInternal,
}

const AGENT_INTERNAL_TYPES: [&str; 9] = [
    "agent_session_state",
    "interactive_shell",
    "agent_task_reply",
    "agent_task_complete",
    "agent_task_acknowledge",
    "agent_job",
    "agent_job_ack",
    "agent_job_reply",
    "agent_job_reply_ack",
];

impl MessageType {
    /// The wire name of a type this client sends or acts on.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::InputStreamData => "input_stream_data",
            MessageType::OutputStreamData => "output_stream_data",
            MessageType::Acknowledge => "acknowledge",
            MessageType::ChannelClosed => "channel_closed",
            MessageType::StartPublication => "start_publication",
            MessageType::PausePublication => "pause_publication",
            MessageType::AgentInternal => "agent_session_state",
        }
    }

    fn parse(name: &str) -> Option<MessageType> {
        Some(match name {
            "input_stream_data" => MessageType::InputStreamData,
            "output_stream_data" => MessageType::OutputStreamData,
            "acknowledge" => MessageType::Acknowledge,
            "channel_closed" => MessageType::ChannelClosed,
            "start_publication" => MessageType::StartPublication,
            "pause_publication" => MessageType::PausePublication,
            other if AGENT_INTERNAL_TYPES.contains(&other) => MessageType::AgentInternal,
            _ => return None,
        })
    }
}

/// PayloadType (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PayloadType {
    /// 0: acks, `channel_closed`, and the 112-byte header that has no PayloadType field.
    Null = 0,
    Output = 1,
    Error = 2,
    Size = 3,
    Parameter = 4,
    HandshakeRequest = 5,
    HandshakeResponse = 6,
    HandshakeComplete = 7,
    EncChallengeRequest = 8,
    EncChallengeResponse = 9,
    Flag = 10,
    StdErr = 11,
    ExitCode = 12,
}

impl PayloadType {
    pub fn from_u32(value: u32) -> Option<PayloadType> {
        use PayloadType::*;
        Some(match value {
            0 => Null,
            1 => Output,
            2 => Error,
            3 => Size,
            4 => Parameter,
            5 => HandshakeRequest,
            6 => HandshakeResponse,
            7 => HandshakeComplete,
            8 => EncChallengeRequest,
            9 => EncChallengeResponse,
            10 => Flag,
            11 => StdErr,
            12 => ExitCode,
            _ => return None,
        })
    }
}

/// Flags header values as the plugin and the agent write them (§6.8); never read on receipt.
pub mod flags {
    /// First message of a stream (the agent's output seq 0).
    pub const SYN: u64 = 1;
    /// Acknowledgements.
    pub const ACK: u64 = 3;
    /// Every other message.
    pub const NONE: u64 = 0;
}

/// One data-channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub message_type: MessageType,
    pub schema_version: u32,
    /// Unix epoch milliseconds.
    pub created_date: u64,
    pub sequence_number: i64,
    pub flags: u64,
    /// In RFC 4122 order; the wire carries the two halves swapped.
    pub message_id: Uuid,
    pub payload_type: PayloadType,
    pub payload: Vec<u8>,
}

/// What was received besides the frame itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub frame: Frame,
    /// 116 normally; 112 for the reported short `channel_closed`.
    pub header_length: u32,
    /// Bytes after the payload; ignored (the caller may log them).
    pub trailing_bytes: usize,
}

/// Why a received frame was refused. The frame is then neither acknowledged nor processed, and
/// the peer retransmits it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {len} bytes is shorter than the smallest header (116 bytes)")]
    ShortFrame { len: usize },
    #[error("header length {header_length} is impossible for a frame of {len} bytes (must be 112..=len-4)")]
    BadHeaderLength { header_length: u32, len: usize },
    #[error("message type field is not ASCII text")]
    MessageTypeNotText,
    #[error("message type is empty")]
    EmptyMessageType,
    #[error("unknown message type {0:?}")]
    UnknownMessageType(String),
    #[error("unknown payload type {0}")]
    UnknownPayloadType(u32),
    #[error("created date is zero")]
    ZeroCreatedDate,
    #[error(
        "payload length {payload_length} runs past the end of the frame ({available} bytes left)"
    )]
    PayloadPastEnd {
        payload_length: u32,
        available: usize,
    },
    #[error("payload digest does not match the SHA-256 of the payload")]
    DigestMismatch,
}

/// Shape of the header to write. Only the fake agent in the tests writes the legacy shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderShape {
    /// HL=116, space-padded type, with PayloadType: what every sender is documented to write.
    Standard,
    /// HL=112, NUL-padded type, no PayloadType field: the reported `channel_closed` shape.
    Legacy112,
}

/// Encodes a frame in the standard shape.
pub fn encode(frame: &Frame) -> Vec<u8> {
    encode_with_shape(frame, HeaderShape::Standard)
}

/// Encodes a frame in the given header shape.
pub fn encode_with_shape(frame: &Frame, shape: HeaderShape) -> Vec<u8> {
    let (header_length, pad) = match shape {
        HeaderShape::Standard => (HEADER_LENGTH, b' '),
        HeaderShape::Legacy112 => (LEGACY_HEADER_LENGTH, 0u8),
    };
    let mut out = Vec::with_capacity(header_length as usize + 4 + frame.payload.len());
    out.extend_from_slice(&header_length.to_be_bytes());
    let name = frame.message_type.as_str().as_bytes();
    out.extend_from_slice(name);
    out.resize(TYPE_OFFSET + MESSAGE_TYPE_WIDTH, pad);
    out.extend_from_slice(&frame.schema_version.to_be_bytes());
    out.extend_from_slice(&frame.created_date.to_be_bytes());
    out.extend_from_slice(&frame.sequence_number.to_be_bytes());
    out.extend_from_slice(&frame.flags.to_be_bytes());
    out.extend_from_slice(&message_id_to_wire(frame.message_id));
    out.extend_from_slice(&Sha256::digest(&frame.payload));
    if shape == HeaderShape::Standard {
        out.extend_from_slice(&(frame.payload_type as u32).to_be_bytes());
    }
    out.extend_from_slice(&(frame.payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&frame.payload);
    out
}

/// The MessageId as it travels: UUID bytes 8..16, then bytes 0..8.
pub fn message_id_to_wire(id: Uuid) -> [u8; 16] {
    let rfc = id.as_bytes();
    let mut wire = [0u8; 16];
    wire[..8].copy_from_slice(&rfc[8..]);
    wire[8..].copy_from_slice(&rfc[..8]);
    wire
}

/// Reverses [`message_id_to_wire`].
pub fn message_id_from_wire(wire: [u8; 16]) -> Uuid {
    let mut rfc = [0u8; 16];
    rfc[..8].copy_from_slice(&wire[8..]);
    rfc[8..].copy_from_slice(&wire[..8]);
    Uuid::from_bytes(rfc)
}

/// Decodes and validates one received frame (§4 "Receiving rules").
pub fn decode(bytes: &[u8]) -> Result<Decoded, CodecError> {
    let len = bytes.len();
    if len < LEGACY_HEADER_LENGTH as usize + 4 {
        return Err(CodecError::ShortFrame { len });
    }
    let header_length = be_u32(bytes, 0);
    let header_end = header_length as usize;
    if header_length < LEGACY_HEADER_LENGTH || header_end > len - 4 {
        return Err(CodecError::BadHeaderLength { header_length, len });
    }
    let message_type = parse_message_type(&bytes[TYPE_OFFSET..TYPE_OFFSET + MESSAGE_TYPE_WIDTH])?;
    let schema_version = be_u32(bytes, SCHEMA_OFFSET);
    let created_date = be_u64(bytes, CREATED_OFFSET);
    let sequence_number = be_u64(bytes, SEQUENCE_OFFSET) as i64;
    let flags = be_u64(bytes, FLAGS_OFFSET);
    let mut wire_id = [0u8; 16];
    wire_id.copy_from_slice(&bytes[MESSAGE_ID_OFFSET..MESSAGE_ID_OFFSET + 16]);
    let message_id = message_id_from_wire(wire_id);
    let digest = &bytes[DIGEST_OFFSET..DIGEST_OFFSET + 32];
    let raw_payload_type = if header_length >= HEADER_LENGTH {
        be_u32(bytes, PAYLOAD_TYPE_OFFSET)
    } else {
        0
    };
    let payload_length = be_u32(bytes, header_end);
    let payload_start = header_end + 4;
    let available = len - payload_start;
    // MGS's own publication notices skip validation in the plugin: their fields may be unusual.
    let lenient = matches!(
        message_type,
        MessageType::StartPublication | MessageType::PausePublication
    );
    let payload = if payload_length as usize <= available {
        bytes[payload_start..payload_start + payload_length as usize].to_vec()
    } else if lenient {
        Vec::new()
    } else {
        return Err(CodecError::PayloadPastEnd {
            payload_length,
            available,
        });
    };
    let payload_type = match PayloadType::from_u32(raw_payload_type) {
        Some(payload_type) => payload_type,
        None if lenient => PayloadType::Null,
        None => return Err(CodecError::UnknownPayloadType(raw_payload_type)),
    };
    if !lenient {
        if created_date == 0 {
            return Err(CodecError::ZeroCreatedDate);
        }
        if !payload.is_empty() && Sha256::digest(&payload).as_slice() != digest {
            return Err(CodecError::DigestMismatch);
        }
    }
    let trailing_bytes = available.saturating_sub(payload.len());
    Ok(Decoded {
        frame: Frame {
            message_type,
            schema_version,
            created_date,
            sequence_number,
            flags,
            message_id,
            payload_type,
            payload,
        },
        header_length,
        trailing_bytes,
    })
}

fn parse_message_type(field: &[u8]) -> Result<MessageType, CodecError> {
    let start = field.iter().position(|&b| b != 0).unwrap_or(field.len());
    let end = field.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    let text = std::str::from_utf8(&field[start..end])
        .ok()
        .filter(|text| text.is_ascii())
        .ok_or(CodecError::MessageTypeNotText)?;
    let name = text.trim();
    if name.is_empty() {
        return Err(CodecError::EmptyMessageType);
    }
    MessageType::parse(name).ok_or_else(|| CodecError::UnknownMessageType(name.to_string()))
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(b)
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;

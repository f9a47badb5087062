//! The JSON bodies carried by the data channel: the OpenDataChannel text frame, acknowledgements,
//! `channel_closed`, the handshake messages and the terminal size (as AWS's
//! session-manager-plugin sends and reads them). Unknown keys are ignored on receipt; field names are AWS's.

use serde::{Deserialize, Serialize};

/// Version string sent as `ClientVersion`, in the plugin's style.
pub const CLIENT_VERSION: &str = "1.2.707.0";

/// The first frame (text) after the WebSocket upgrade.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenDataChannel {
    pub message_schema_version: String,
    pub request_id: String,
    pub token_value: String,
    pub client_id: String,
    pub client_version: String,
}

impl std::fmt::Debug for OpenDataChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenDataChannel")
            .field("request_id", &self.request_id)
            .field("token_value", &"***")
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// Body of an `acknowledge` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledge {
    #[serde(rename = "AcknowledgedMessageType")]
    pub message_type: String,
    #[serde(rename = "AcknowledgedMessageId")]
    pub message_id: String,
    #[serde(rename = "AcknowledgedMessageSequenceNumber")]
    pub sequence_number: i64,
    #[serde(rename = "IsSequentialMessage")]
    pub is_sequential: bool,
}

/// Body of `channel_closed`; `Output` is empty on a normal end, else the agent's error text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ChannelClosed {
    pub message_id: String,
    pub session_id: String,
    pub output: String,
}

/// HandshakeRequest (agent to client, PayloadType 5).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeRequest {
    #[serde(default)]
    pub agent_version: String,
    #[serde(default)]
    pub requested_client_actions: Vec<RequestedClientAction>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestedClientAction {
    pub action_type: String,
    #[serde(default)]
    pub action_parameters: serde_json::Value,
}

/// HandshakeResponse (client to agent, PayloadType 6).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeResponse {
    pub client_version: String,
    pub processed_client_actions: Vec<ProcessedClientAction>,
    pub errors: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessedClientAction {
    pub action_type: String,
    pub action_status: u32,
    pub action_result: Option<serde_json::Value>,
    pub error: String,
}

/// ActionStatus values.
pub mod action_status {
    pub const SUCCESS: u32 = 1;
    pub const FAILED: u32 = 2;
    pub const UNSUPPORTED: u32 = 3;
}

/// The text this client answers a KMSEncryption action with.
pub const KMS_UNSUPPORTED: &str = "KMS encryption is not supported by this client";

/// Session types a client accepts in the SessionType action.
const SESSION_TYPES: [&str; 4] = [
    "Standard_Stream",
    "InteractiveCommands",
    "NonInteractiveCommands",
    "Port",
];

/// The answer to a HandshakeRequest, one entry per requested action in the same order, and
/// whether KMS encryption was asked for (which this client cannot do).
pub fn answer_handshake(request: &HandshakeRequest) -> (HandshakeResponse, bool) {
    let mut errors = Vec::new();
    let mut kms_requested = false;
    let processed = request
        .requested_client_actions
        .iter()
        .map(|action| {
            let (status, error) = match action.action_type.as_str() {
                "SessionType" => {
                    let session_type = action
                        .action_parameters
                        .get("SessionType")
                        .and_then(|v| v.as_str())
                        .unwrap_or("");
                    if SESSION_TYPES.contains(&session_type) {
                        (action_status::SUCCESS, String::new())
                    } else {
                        (
                            action_status::FAILED,
                            format!("unknown session type {session_type:?}"),
                        )
                    }
                }
                "KMSEncryption" => {
                    kms_requested = true;
                    (action_status::FAILED, KMS_UNSUPPORTED.to_string())
                }
                other => (
                    action_status::UNSUPPORTED,
                    format!("unsupported action type {other:?}"),
                ),
            };
            if !error.is_empty() {
                errors.push(error.clone());
            }
            ProcessedClientAction {
                action_type: action.action_type.clone(),
                action_status: status,
                action_result: None,
                error,
            }
        })
        .collect();
    (
        HandshakeResponse {
            client_version: CLIENT_VERSION.to_string(),
            processed_client_actions: processed,
            errors: if errors.is_empty() {
                None
            } else {
                Some(errors)
            },
        },
        kms_requested,
    )
}

/// HandshakeComplete (agent to client, PayloadType 7).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HandshakeComplete {
    pub handshake_time_to_complete: i64,
    pub customer_message: String,
}

/// Terminal size (PayloadType 3); lowercase keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct TerminalSize {
    pub cols: u32,
    pub rows: u32,
}

//! A small client for a self-hosted ntfy server: a JSON publish (`POST /` with the topic in the
//! body) and a poll of the topic's cached messages (`GET /<topic>/json?poll=1&since=<unix>`) to
//! find one an interrupted attempt published. Authentication is a bearer access token or basic
//! auth, never in a URL.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::config::RotatingSecret;
use crate::notify::http::{body_excerpt, transient_status, transport_error};
use crate::notify::DeliveryError;

/// Messages read from a poll before giving up looking (a busy topic).
const MAX_POLLED: usize = 5000;

/// How requests prove who we are.
#[derive(Clone)]
pub enum NtfyAuth {
    None,
    Token(RotatingSecret),
    Basic {
        username: String,
        password: RotatingSecret,
    },
}

/// One `view` action: a button that opens a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewAction {
    pub label: String,
    pub url: String,
}

/// What one publish sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub title: String,
    pub message: String,
    pub priority: u8,
    pub tags: Vec<String>,
    pub click: Option<String>,
    pub actions: Vec<ViewAction>,
}

pub struct NtfyApi {
    http: reqwest::Client,
    base_url: String,
    topic: String,
    auth: NtfyAuth,
}

impl NtfyApi {
    /// How it authenticates (its secret shared with the destination's rotation).
    pub fn auth(&self) -> &NtfyAuth {
        &self.auth
    }

    pub fn new(http: reqwest::Client, base_url: &str, topic: &str, auth: NtfyAuth) -> Self {
        NtfyApi {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            topic: topic.to_string(),
            auth,
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            NtfyAuth::None => request,
            NtfyAuth::Token(token) => request.bearer_auth(token.current().expose()),
            NtfyAuth::Basic { username, password } => {
                request.basic_auth(username, Some(password.current().expose()))
            }
        }
    }

    /// The JSON body of a publish (ntfy's "publish as JSON" form).
    pub fn body(&self, publish: &Publish) -> Value {
        let mut body = json!({
            "topic": self.topic,
            "title": publish.title,
            "message": publish.message,
            "priority": publish.priority,
            "tags": publish.tags,
        });
        if let Some(click) = &publish.click {
            body["click"] = json!(click);
        }
        if !publish.actions.is_empty() {
            body["actions"] = publish
                .actions
                .iter()
                .take(3)
                .map(|a| json!({"action": "view", "label": a.label, "url": a.url, "clear": false}))
                .collect();
        }
        body
    }

    /// Publishes; ntfy's message `id`.
    pub async fn publish(&self, publish: &Publish) -> Result<String, DeliveryError> {
        let what = "publish";
        let response = self
            .authorized(self.http.post(&self.base_url))
            .header("content-type", "application/json")
            .body(self.body(publish).to_string())
            .send()
            .await
            .map_err(|e| transport_error("ntfy", what, e))?;
        let answer = read(what, response).await?;
        answer["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                DeliveryError::permanent(
                    "ntfy answered the publish without a message id; check ntfy.base_url (it must be the ntfy server itself)",
                )
            })
    }

    /// The id of the cached message tagged `marker` published since `since` (Unix seconds).
    pub async fn find(&self, marker: &str, since: i64) -> Result<Option<String>, DeliveryError> {
        let what = "poll";
        let response = self
            .authorized(
                self.http
                    .get(format!("{}/{}/json", self.base_url, self.topic)),
            )
            .query(&[("poll", "1"), ("since", &since.max(0).to_string())])
            .send()
            .await
            .map_err(|e| transport_error("ntfy", what, e))?;
        let status = response.status();
        if let Some(error) = transient_status("ntfy", what, status, response.headers()) {
            return Err(error);
        }
        let text = response
            .text()
            .await
            .map_err(|e| transport_error("ntfy", what, e))?;
        if !status.is_success() {
            return Err(refused(what, status, &text));
        }
        Ok(find_tagged(&text, marker))
    }
}

/// The id of the first `message` event in ntfy's newline-delimited JSON that carries `marker`
/// among its tags. Lines that are not JSON are passed over.
pub fn find_tagged(ndjson: &str, marker: &str) -> Option<String> {
    ndjson
        .lines()
        .take(MAX_POLLED)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["event"] == "message")
        .find(|event| {
            event["tags"]
                .as_array()
                .is_some_and(|tags| tags.iter().any(|t| t == marker))
        })
        .and_then(|event| event["id"].as_str().map(str::to_string))
}

async fn read(what: &str, response: reqwest::Response) -> Result<Value, DeliveryError> {
    let status = response.status();
    if let Some(error) = transient_status("ntfy", what, status, response.headers()) {
        return Err(error);
    }
    let text = response
        .text()
        .await
        .map_err(|e| transport_error("ntfy", what, e))?;
    if !status.is_success() {
        return Err(refused(what, status, &text));
    }
    serde_json::from_str(&text).map_err(|_| {
        DeliveryError::transient(format!(
            "ntfy's answer to the {what} is not JSON: {}",
            body_excerpt(&text)
        ))
    })
}

fn refused(what: &str, status: StatusCode, body: &str) -> DeliveryError {
    let advice = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            "the credentials were refused or may not write this topic; set ntfy.token_file (or CABAL_TRIAGE_NTFY_TOKEN), or ntfy.username and ntfy.password_file"
        }
        StatusCode::NOT_FOUND => "not found; check ntfy.base_url",
        StatusCode::PAYLOAD_TOO_LARGE => "the message is too large for this server",
        _ => "ntfy refused the request",
    };
    DeliveryError::permanent(format!(
        "ntfy answered HTTP {} to the {what}: {advice} ({})",
        status.as_u16(),
        body_excerpt(body)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tagged_message_among_others_and_garbage() {
        let ndjson = concat!(
            "{\"id\":\"a1\",\"event\":\"message\",\"tags\":[\"warning\"]}\n",
            "not json at all\n",
            "{\"id\":\"k1\",\"event\":\"keepalive\",\"tags\":[\"ct-ep-1-7\"]}\n",
            "{\"id\":\"b2\",\"event\":\"message\",\"tags\":[\"x\",\"ct-ep-1-7\"]}\n",
        );
        assert_eq!(find_tagged(ndjson, "ct-ep-1-7").as_deref(), Some("b2"));
        assert_eq!(find_tagged(ndjson, "ct-ep-1-8"), None);
        assert_eq!(find_tagged("", "ct-ep-1-7"), None);
        assert_eq!(find_tagged("{\"event\":\"message\",\"tags\":7}", "x"), None);
    }

    #[test]
    fn at_most_three_view_actions() {
        let api = NtfyApi::new(
            reqwest::Client::new(),
            "https://ntfy.example/",
            "cabal",
            NtfyAuth::None,
        );
        let publish = Publish {
            title: "t".into(),
            message: "m".into(),
            priority: 5,
            tags: vec!["warning".into()],
            click: Some("https://triage.example/e".into()),
            actions: (0..5)
                .map(|n| ViewAction {
                    label: format!("L{n}"),
                    url: format!("https://x.example/{n}"),
                })
                .collect(),
        };
        let body = api.body(&publish);
        assert_eq!(body["topic"], "cabal");
        assert_eq!(body["actions"].as_array().unwrap().len(), 3);
        assert_eq!(body["actions"][0]["action"], "view");
        assert_eq!(body["click"], "https://triage.example/e");
    }
}

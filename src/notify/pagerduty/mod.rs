//! The PagerDuty destination: one note per finished triage on the incident Alertmanager's
//! PagerDuty integration opened for the same group.
//!
//! The incident key is the lowercase hex SHA-256 of the Alertmanager group key (what
//! Alertmanager sends as `dedup_key`). The incident is found with the REST API
//! (`GET /incidents?incident_key=…&date_range=all`); while it does not exist yet (the webhook can
//! arrive before PagerDuty has processed Alertmanager's event) the attempt is a transient error
//! and the shared retry stage waits. Before adding the note, the incident's notes are read: a
//! note carrying this report's marker means an earlier attempt got through, so none is added
//! twice. No Events API call is ever made: a trigger could re-open or re-page.
//!
//! A triage that ends `failed` gets one note too (what failed, what is known), marked with a
//! digest of the failure so that it is not added twice either.

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::{body_excerpt, transient_status, transport_error};
use super::{stored_report, with_annotation, DeliveryContext, DeliveryError, Destination, Sent};
use crate::alert::pagerduty_dedup_key;
use crate::config::{Config, RotatingSecret, Rotation, Secret};
use crate::ledger::{ClaimedDelivery, DeliveryKind};
use crate::report::render::pagerduty as render;

/// The destination name (delivery rows and the `destination` metric label).
pub const DESTINATION: &str = "pagerduty";

/// Ledger reference key for the incident the notes go to.
pub const REF_INCIDENT: &str = "pagerduty.incident";

pub struct PagerDuty {
    http: reqwest::Client,
    base_url: String,
    token: RotatingSecret,
    from: String,
}

impl PagerDuty {
    pub fn new(http: reqwest::Client, base_url: &str, token: Secret, from: &str) -> Self {
        PagerDuty {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: RotatingSecret::new(token),
            from: from.to_string(),
        }
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder
            .header(
                "authorization",
                format!("Token token={}", self.token.current().expose()),
            )
            .header("accept", "application/vnd.pagerduty+json;version=2")
    }

    async fn read(
        &self,
        what: &str,
        response: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value, DeliveryError> {
        let response = response.map_err(|e| transport_error("PagerDuty", what, e))?;
        let status = response.status();
        if let Some(error) = transient_status("PagerDuty", what, status, response.headers()) {
            return Err(error);
        }
        let text = response
            .text()
            .await
            .map_err(|e| transport_error("PagerDuty", what, e))?;
        let advice = match status {
            s if s.is_success() => {
                return serde_json::from_str(&text).map_err(|_| {
                    DeliveryError::transient(format!(
                        "PagerDuty's answer to {what} is not JSON: {}",
                        body_excerpt(&text)
                    ))
                })
            }
            StatusCode::UNAUTHORIZED => "the API token was rejected; set pagerduty.api_token_file or CABAL_TRIAGE_PAGERDUTY_API_TOKEN",
            StatusCode::FORBIDDEN => "the token may not do this (a read-only key, or no access to the service)",
            StatusCode::NOT_FOUND => "not found; check pagerduty.api_base_url, or the incident was deleted or merged",
            _ => "PagerDuty refused the request",
        };
        Err(DeliveryError::permanent(format!(
            "PagerDuty answered HTTP {} to {what}: {advice} ({})",
            status.as_u16(),
            body_excerpt(&text)
        )))
    }

    /// The incident for `incident_key`: an open one if any, else the newest.
    async fn find_incident(&self, incident_key: &str) -> Result<Option<String>, DeliveryError> {
        let response = self
            .request(self.http.get(format!("{}/incidents", self.base_url)))
            .query(&[("incident_key", incident_key), ("date_range", "all")])
            .send()
            .await;
        let answer = self.read("the incident lookup", response).await?;
        let incidents = answer["incidents"].as_array().cloned().unwrap_or_default();
        let open = |i: &&Value| matches!(i["status"].as_str(), Some("triggered" | "acknowledged"));
        let newest = |list: Vec<&Value>| {
            list.into_iter()
                .max_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()))
                .and_then(|i| i["id"].as_str())
                .map(str::to_string)
        };
        let open_ones: Vec<&Value> = incidents.iter().filter(open).collect();
        Ok(if open_ones.is_empty() {
            newest(incidents.iter().collect())
        } else {
            newest(open_ones)
        })
    }

    async fn notes(&self, incident: &str) -> Result<Vec<String>, DeliveryError> {
        let response = self
            .request(
                self.http
                    .get(format!("{}/incidents/{incident}/notes", self.base_url)),
            )
            .send()
            .await;
        let answer = self.read("the note listing", response).await?;
        Ok(answer["notes"]
            .as_array()
            .map(|notes| {
                notes
                    .iter()
                    .filter_map(|n| n["content"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn add_note(
        &self,
        incident: &str,
        content: &str,
    ) -> Result<Option<String>, DeliveryError> {
        let response = self
            .request(
                self.http
                    .post(format!("{}/incidents/{incident}/notes", self.base_url)),
            )
            .header("from", &self.from)
            .header("content-type", "application/json")
            .body(json!({"note": {"content": content}}).to_string())
            .send()
            .await;
        let answer = self.read("adding the note", response).await?;
        Ok(answer["note"]["id"].as_str().map(str::to_string))
    }
}

/// The first 12 hex digits of the report's SHA-256: names the report in the note's marker.
pub fn report_digest(report_json: &str) -> String {
    hex::encode(Sha256::digest(report_json.as_bytes()))[..12].to_string()
}

#[async_trait]
impl Destination for PagerDuty {
    fn name(&self) -> &'static str {
        DESTINATION
    }

    fn rotate_secrets(&self, config: &Config) -> Vec<(&'static str, Rotation)> {
        let rotation = self.token.rotate_to(config.pagerduty.api_token.as_ref());
        vec![("pagerduty.api_token", rotation)]
    }

    /// One note per finished triage on the incident Alertmanager opened (a fresh verdict
    /// included: the note is named by its report), and one when the triage ended failed
    /// (someone paged through PagerDuty hears of it too).
    fn wants(&self, kind: DeliveryKind) -> bool {
        matches!(
            kind,
            DeliveryKind::Verdict | DeliveryKind::TriageFailed | DeliveryKind::Retriaged
        )
    }

    async fn deliver(
        &self,
        delivery: &ClaimedDelivery,
        context: &DeliveryContext<'_>,
    ) -> Result<Sent, DeliveryError> {
        let (marker, report) = match (delivery.kind, delivery.report_json.as_deref()) {
            // A triage that ended failed: one note saying what failed, named by its error.
            (DeliveryKind::TriageFailed, _) => (
                render::failure_marker(
                    &delivery.episode.id,
                    &report_digest(delivery.job_error.as_deref().unwrap_or_default()),
                ),
                None,
            ),
            (_, Some(report_json)) => (
                render::marker(&delivery.episode.id, &report_digest(report_json)),
                stored_report(delivery)?,
            ),
            (_, None) => return Ok(Sent::Skipped("no report stored".into())),
        };
        let content = with_annotation(delivery, report.as_ref(), context.settings, |a| {
            render::note(a, &marker)
        });
        let incident_key = pagerduty_dedup_key(&delivery.episode.group_key);
        let incident = match delivery.refs.get(REF_INCIDENT) {
            Some(incident) => incident.clone(),
            None => {
                let Some(incident) = self.find_incident(&incident_key).await? else {
                    return Err(DeliveryError::transient(format!(
                        "no PagerDuty incident with incident_key {incident_key} yet; waiting for Alertmanager's PagerDuty integration to open it (it must be in the same receiver as this webhook)"
                    )));
                };
                // Stored with this attempt's outcome (even a retry), in the same ledger write.
                context.keep_ref(REF_INCIDENT, &incident);
                incident
            }
        };
        if self
            .notes(&incident)
            .await?
            .iter()
            .any(|note| note.contains(&marker))
        {
            return Ok(Sent::Delivered(Some(format!(
                "{incident} (note already present)"
            ))));
        }
        let note_id = self.add_note(&incident, &content).await?;
        Ok(Sent::Delivered(Some(match note_id {
            Some(id) => format!("{incident}/{id}"),
            None => incident,
        })))
    }
}

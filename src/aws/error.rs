//! Every AWS SDK error becomes one `AwsError`: a sentence that names the IAM action that failed
//! and tells the operator what to do (grant the action, fix the log group name, check the
//! endpoint, raise a deadline). Reports show these sentences verbatim.

use std::error::Error as StdError;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::timing::Deadline;

/// A failed AWS call, classified. `action` is the IAM action (`logs:FilterLogEvents`), often
/// followed by the resource (`on /ecs/cabal-smtp-out`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error("{action}: no AWS credentials found ({detail}); run the service with an IAM role (ECS task role or instance profile), or set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    CredentialsMissing { action: String, detail: String },

    #[error("{action}: AWS rejected the credentials ({code}: {message}); check that the access key exists, is active and has not expired")]
    CredentialsRejected {
        action: String,
        code: String,
        message: String,
    },

    #[error("{action}: access denied ({message}); grant {iam_action} to the service's role (deploy/iam/cabal-triage-policy.json)")]
    AccessDenied {
        action: String,
        iam_action: String,
        message: String,
    },

    #[error("{action}: log group {log_group} does not exist in this account and region; check cabalmail.tiers.<tier>.log_group and aws.region")]
    LogGroupNotFound { action: String, log_group: String },

    #[error(
        "{action}: not found ({code}: {message}); check the names under [cabalmail] and aws.region"
    )]
    NotFound {
        action: String,
        code: String,
        message: String,
    },

    #[error("{action}: cannot reach the AWS endpoint {endpoint} ({detail}); check aws.endpoint_url / aws.endpoints, DNS and the network path to AWS")]
    EndpointUnreachable {
        action: String,
        endpoint: String,
        detail: String,
    },

    #[error("{action}: timed out, the probe's deadline of {} ran out; raise the deadline under [probes] if AWS is this slow", human(.budget))]
    Timeout { action: String, budget: Duration },

    #[error("{action}: throttled by AWS ({attempts} attempts with backoff) until the deadline ran out; the account's API rate is exhausted, other tools may be calling the same API")]
    Throttled { action: String, attempts: u32 },

    #[error("{action}: AWS error {code} (HTTP {status}): {message}")]
    Service {
        action: String,
        code: String,
        message: String,
        status: u16,
    },

    #[error("{action}: {detail}")]
    Other { action: String, detail: String },
}

/// Error codes AWS uses for "slow down" across the three services.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];

/// Error codes that mean the request was understood but the caller may not do it.
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "UnauthorizedException",
];

/// Error codes that mean the credentials themselves are bad.
const CREDENTIALS_REJECTED_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

impl AwsError {
    /// A throttled call: worth retrying after a pause.
    pub fn is_throttling(&self) -> bool {
        matches!(self, AwsError::Throttled { .. })
    }

    /// A failure that may pass on its own (connection refused or reset, 5xx): worth one or two
    /// more attempts.
    pub fn is_transient(&self) -> bool {
        match self {
            AwsError::EndpointUnreachable { .. } => true,
            AwsError::Service { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The deadline ran out (the report says "timed out" rather than "failed").
    pub fn is_timeout(&self) -> bool {
        matches!(self, AwsError::Timeout { .. })
    }

    /// The failed action, with its resource when known.
    pub fn action(&self) -> &str {
        match self {
            AwsError::CredentialsMissing { action, .. }
            | AwsError::CredentialsRejected { action, .. }
            | AwsError::AccessDenied { action, .. }
            | AwsError::LogGroupNotFound { action, .. }
            | AwsError::NotFound { action, .. }
            | AwsError::EndpointUnreachable { action, .. }
            | AwsError::Timeout { action, .. }
            | AwsError::Throttled { action, .. }
            | AwsError::Service { action, .. }
            | AwsError::Other { action, .. } => action,
        }
    }

    /// The timeout error of `action` for `deadline`.
    pub fn timeout(action: &str, deadline: &Deadline) -> AwsError {
        AwsError::Timeout {
            action: action.to_string(),
            budget: deadline.budget,
        }
    }

    /// Turns a "not found" from FilterLogEvents into the precise log-group sentence.
    pub fn for_log_group(self, log_group: &str) -> AwsError {
        match self {
            AwsError::NotFound { action, .. } => AwsError::LogGroupNotFound {
                action,
                log_group: log_group.to_string(),
            },
            other => other,
        }
    }
}

/// What a call was: the IAM action (`ecs:ListTasks`), the resource it was about (for the
/// message) and the endpoint it went to (when overridden).
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    pub iam_action: &'a str,
    pub resource: Option<&'a str>,
    pub endpoint: Option<&'a str>,
}

impl CallContext<'_> {
    /// The action as messages name it: the IAM action, and its resource when known.
    pub fn action(&self) -> String {
        match self.resource {
            Some(resource) => format!("{} on {resource}", self.iam_action),
            None => self.iam_action.to_string(),
        }
    }
}

/// Classifies one SDK error.
pub fn classify<E>(ctx: CallContext<'_>, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let action = ctx.action();
    if let SdkError::ServiceError(service) = &err {
        let status = service.raw().status().as_u16();
        let mut code = service.err().code().unwrap_or("").to_string();
        let mut message = service.err().message().map(str::to_string);
        if code.is_empty() {
            // Some endpoints (proxies, moto's IAM check) answer a JSON API with an XML error
            // document; read its <Code> and <Message> rather than report "unhandled".
            if let Some(body) = service.raw().body().bytes() {
                let body = String::from_utf8_lossy(&body[..body.len().min(8192)]);
                code = xml_element(&body, "Code").unwrap_or_default();
                message = message.or_else(|| xml_element(&body, "Message"));
            }
        }
        let message = message.unwrap_or_else(|| DisplayErrorContext(service.err()).to_string());
        return classify_code(&ctx, action, &code, message, status);
    }
    if chain_has_credentials_error(&err) {
        return AwsError::CredentialsMissing {
            action,
            detail: chain_text(&err),
        };
    }
    let endpoint = ctx
        .endpoint
        .unwrap_or("(the SDK's default endpoint)")
        .to_string();
    match &err {
        SdkError::DispatchFailure(dispatch) if dispatch.is_io() || dispatch.is_timeout() => {
            AwsError::EndpointUnreachable {
                action,
                endpoint,
                detail: chain_text(&err),
            }
        }
        SdkError::DispatchFailure(_) => AwsError::EndpointUnreachable {
            action,
            endpoint,
            detail: chain_text(&err),
        },
        SdkError::TimeoutError(_) => AwsError::EndpointUnreachable {
            action,
            endpoint,
            detail: format!("the SDK timed out: {}", chain_text(&err)),
        },
        SdkError::ResponseError(_) if chain_has::<std::io::Error>(&err) => {
            AwsError::EndpointUnreachable {
                action,
                endpoint,
                detail: format!(
                    "the connection broke while reading the response: {}",
                    chain_text(&err)
                ),
            }
        }
        SdkError::ResponseError(_) => AwsError::Other {
            action,
            detail: format!(
                "the response could not be read ({}); is {endpoint} really the AWS endpoint?",
                chain_text(&err)
            ),
        },
        _ => AwsError::Other {
            action,
            detail: chain_text(&err),
        },
    }
}

/// Classifies an error response by its AWS error code (pure: unit-tested on its own).
pub fn classify_code(
    ctx: &CallContext<'_>,
    action: String,
    code: &str,
    message: String,
    status: u16,
) -> AwsError {
    let code_owned = code.to_string();
    if THROTTLING_CODES.contains(&code) || status == 429 {
        return AwsError::Throttled {
            action,
            attempts: 1,
        };
    }
    if ACCESS_DENIED_CODES.contains(&code) {
        return AwsError::AccessDenied {
            action,
            iam_action: ctx.iam_action.to_string(),
            message,
        };
    }
    if CREDENTIALS_REJECTED_CODES.contains(&code) {
        return AwsError::CredentialsRejected {
            action,
            code: code_owned,
            message,
        };
    }
    if code.is_empty() && status == 403 {
        return AwsError::AccessDenied {
            action,
            iam_action: ctx.iam_action.to_string(),
            message,
        };
    }
    if code.is_empty() && status == 401 {
        return AwsError::CredentialsRejected {
            action,
            code: "HTTP 401".to_string(),
            message,
        };
    }
    if code == "ResourceNotFoundException"
        || code == "ClusterNotFoundException"
        || code == "ServiceNotFoundException"
        || code.ends_with(".NotFound")
    {
        return AwsError::NotFound {
            action,
            code: code_owned,
            message,
        };
    }
    AwsError::Service {
        action,
        code: if code.is_empty() {
            "(no code)".to_string()
        } else {
            code_owned
        },
        message,
        status,
    }
}

/// The text of the first `<name>...</name>` element, entities left as they are (the text only
/// ends up in an error message).
fn xml_element(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let len = body.get(start..)?.find(&close)?;
    let text = body.get(start..start + len)?.trim();
    (!text.is_empty()).then(|| text.chars().take(500).collect())
}

fn chain_has_credentials_error(err: &(dyn StdError + 'static)) -> bool {
    chain_has::<CredentialsError>(err)
}

/// Whether an error of type `T` is anywhere in the source chain.
fn chain_has<T: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<T>().is_some() {
            return true;
        }
        current = e.source();
    }
    false
}

/// The Display text of every error in the chain, joined by ": " (no Debug dumps of raw
/// responses), at most 600 characters.
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ").chars().take(600).collect()
}

/// "8 s", "1.5 s" or "250 ms".
pub fn human(d: &Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CallContext<'static> {
        CallContext {
            iam_action: "logs:FilterLogEvents",
            resource: Some("/ecs/cabal-imap"),
            endpoint: None,
        }
    }

    fn by_code(code: &str, status: u16) -> AwsError {
        classify_code(&ctx(), ctx().action(), code, "msg".into(), status)
    }

    #[test]
    fn codes_map_to_operator_sentences() {
        let denied = by_code("AccessDeniedException", 400);
        assert!(matches!(denied, AwsError::AccessDenied { .. }));
        assert_eq!(
            denied.to_string(),
            "logs:FilterLogEvents on /ecs/cabal-imap: access denied (msg); grant logs:FilterLogEvents to the service's role (deploy/iam/cabal-triage-policy.json)"
        );
        assert!(matches!(
            by_code("UnauthorizedOperation", 403),
            AwsError::AccessDenied { .. }
        ));
        assert!(by_code("ThrottlingException", 400).is_throttling());
        assert!(by_code("RequestLimitExceeded", 503).is_throttling());
        assert!(by_code("", 429).is_throttling());
        assert!(matches!(
            by_code("InvalidClientTokenId", 403),
            AwsError::CredentialsRejected { .. }
        ));
        let missing = by_code("ResourceNotFoundException", 400).for_log_group("/ecs/cabal-imap");
        assert_eq!(
            missing.to_string(),
            "logs:FilterLogEvents on /ecs/cabal-imap: log group /ecs/cabal-imap does not exist in this account and region; check cabalmail.tiers.<tier>.log_group and aws.region"
        );
        let server = by_code("InternalFailure", 500);
        assert!(server.is_transient());
        assert!(!by_code("ValidationException", 400).is_transient());
    }

    #[test]
    fn xml_errors_are_read_without_panicking() {
        let body = "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>User: u is not authorized to perform: logs:FilterLogEvents</Message></Error></Errors></ErrorResponse>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(
            xml_element(body, "Message").as_deref(),
            Some("User: u is not authorized to perform: logs:FilterLogEvents")
        );
        for hostile in [
            "",
            "<Code>",
            "<Code></Code>",
            "</Code><Code>",
            "<Code>\u{1F600}",
            "<Code>é",
        ] {
            let _ = xml_element(hostile, "Code");
        }
        assert_eq!(xml_element("<Code></Code>", "Code"), None);
        assert!(matches!(by_code("", 403), AwsError::AccessDenied { .. }));
        assert!(matches!(
            by_code("", 401),
            AwsError::CredentialsRejected { .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn xml_element_never_panics(body in ".{0,200}", name in "[A-Za-z]{1,8}") {
            let _ = xml_element(&body, &name);
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(&Duration::from_millis(250)), "250 ms");
        assert_eq!(human(&Duration::from_secs(8)), "8 s");
        assert_eq!(human(&Duration::from_millis(1500)), "1.5 s");
    }
}

//! Slack's `ok:false` answers (HTTP 200 with an error code), each mapped to retry or give up
//! with a reason an operator can act on.

use std::time::Duration;

use crate::notify::DeliveryError;

/// Classifies an `ok:false` error `code` returned by `method`.
pub fn classify(method: &str, code: &str, retry_after: Option<Duration>) -> DeliveryError {
    let permanent = |advice: &str| {
        DeliveryError::permanent(format!("Slack {method} failed with {code}: {advice}"))
    };
    match code {
        "ratelimited" | "rate_limited" => DeliveryError::Transient {
            reason: format!("Slack {method} failed with {code}: rate limited"),
            retry_after,
        },
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout"
        | "team_added_to_org" => DeliveryError::Transient {
            reason: format!("Slack {method} failed with {code}: a Slack-side problem, retrying"),
            retry_after,
        },
        "channel_not_found" => permanent(
            "the channel does not exist or the bot cannot see it; set slack.channel to the channel ID (C…) and invite the bot",
        ),
        "not_in_channel" => permanent(
            "the bot is not a member of the channel; invite it (/invite @bot) or grant chat:write.public",
        ),
        "is_archived" => permanent("the channel is archived; choose another slack.channel"),
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired" => {
            permanent("Slack rejected the bot token; set a valid xoxb- token in slack.bot_token_file or CABAL_TRIAGE_SLACK_BOT_TOKEN")
        }
        "missing_scope" | "not_allowed_token_type" => permanent(
            "the token lacks a scope; the bot needs chat:write (and channels:history for crash-safe posting)",
        ),
        "msg_too_long" | "msg_blocks_too_long" | "invalid_blocks" | "invalid_blocks_format"
        | "too_many_attachments" | "no_text" => permanent(
            "Slack refused the message itself; this is a cabal-triage rendering bug, please report it with the episode id",
        ),
        "message_not_found" | "cant_update_message" | "edit_window_closed" => permanent(
            "the episode's message can no longer be edited (deleted, or not posted by this bot)",
        ),
        "invalid_arguments" | "invalid_arg_name" | "invalid_form_data" | "invalid_json"
        | "json_not_object" => permanent("Slack refused the request; this is a cabal-triage bug, please report it"),
        _ => permanent("see https://api.slack.com/methods for this error code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_retry_or_fail_with_advice() {
        assert!(matches!(
            classify("chat.postMessage", "ratelimited", Some(Duration::from_secs(3))),
            DeliveryError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify("chat.update", "internal_error", None),
            DeliveryError::Transient { .. }
        ));
        for (code, advice) in [
            ("channel_not_found", "channel ID"),
            ("not_in_channel", "/invite"),
            ("invalid_auth", "bot token"),
            ("msg_too_long", "rendering bug"),
            ("something_new", "error code"),
        ] {
            let error = classify("chat.postMessage", code, None);
            let DeliveryError::Permanent { reason } = error else {
                panic!("{code} should be permanent");
            };
            assert!(reason.contains(code) && reason.contains(advice), "{reason}");
        }
    }
}

//! Making untrusted text safe to show: Slack mrkdwn escaping, length caps that never cut an
//! escape sequence in half, and link URLs we build ourselves. Redaction and the removal of
//! invisible characters are the core's (`report::redact`, `report::sanitize`), applied here.
//!
//! Slack treats only `&`, `<` and `>` as control characters; everything between `<` and `>` is
//! markup (`<!channel>`, `<@U…>`, `<http://evil|label>`). Escaping exactly those three, `&`
//! first, shows such text instead of acting on it.

use std::borrow::Cow;

use crate::report::redact::redact;
use crate::report::sanitize::sanitize_line;

/// The marker appended where text was cut.
pub const TRUNCATION_MARKER: &str = "… [truncated]";

/// Escapes the three Slack control characters.
pub fn mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => out.push(other),
        }
    }
    out
}

/// Escapes for mrkdwn and caps the result at `max_chars` characters (counting the marker),
/// cutting only between whole characters and whole escape sequences.
pub fn mrkdwn_within(text: &str, max_chars: usize) -> String {
    let escaped = mrkdwn(text);
    if escaped.chars().count() <= max_chars {
        return escaped;
    }
    let room = max_chars.saturating_sub(TRUNCATION_MARKER.chars().count());
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece: Cow<'_, str> = match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            other => other.to_string().into(),
        };
        let width = piece.chars().count();
        if used + width > room {
            break;
        }
        used += width;
        out.push_str(&piece);
    }
    out.push_str(TRUNCATION_MARKER);
    out
}

/// Caps plain text at `max_chars` characters, marker included.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let room = max_chars.saturating_sub(TRUNCATION_MARKER.chars().count());
    let mut out: String = text.chars().take(room).collect();
    out.push_str(TRUNCATION_MARKER);
    out
}

/// Redacts with the one redactor (`crate::report::redact`); kept under this name for the
/// renderers.
pub fn redact_emails(text: &str, show_local_parts: bool) -> Cow<'_, str> {
    redact(text, show_local_parts)
}

/// Untrusted text prepared for mrkdwn: made inert and folded to one line (the one sanitizer),
/// addresses redacted, escaped, capped.
pub fn untrusted_mrkdwn(text: &str, max_chars: usize, show_local_parts: bool) -> String {
    let cleaned = sanitize_line(text);
    mrkdwn_within(&redact(&cleaned, show_local_parts), max_chars)
}

/// Untrusted text prepared for plain text (PagerDuty notes, Slack `plain_text`, terminals): made
/// inert and folded to one line, addresses redacted, capped.
pub fn untrusted_plain(text: &str, max_chars: usize, show_local_parts: bool) -> String {
    let cleaned = sanitize_line(text);
    truncate(&redact(&cleaned, show_local_parts), max_chars)
}

/// A URL we are willing to put inside `<…|…>`: http(s), short, and free of the characters that
/// would end or split the link (`<`, `>`, `|`), of quotes, spaces and controls.
pub fn safe_link_url(url: &str) -> Option<&str> {
    let url = url.trim();
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    let chars_ok = !url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '|' | '"'));
    (scheme_ok && chars_ok && url.len() <= 1000 && url.len() > "https://".len()).then_some(url)
}

/// A mrkdwn link built from a validated URL and an escaped label; the label alone when the URL
/// is not safe.
pub fn link(url: &str, label: &str) -> String {
    match safe_link_url(url) {
        Some(url) => format!("<{}|{}>", url.replace('&', "&amp;"), mrkdwn(label)),
        None => mrkdwn(label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_only_the_three_control_characters_ampersand_first() {
        assert_eq!(
            mrkdwn("<!channel> click <http://evil|here> & \"q\" 'a' *b*"),
            "&lt;!channel&gt; click &lt;http://evil|here&gt; &amp; \"q\" 'a' *b*"
        );
        assert_eq!(mrkdwn("&lt;"), "&amp;lt;");
    }

    #[test]
    fn truncation_never_cuts_an_entity() {
        let text = "<".repeat(100);
        let out = mrkdwn_within(&text, 50);
        assert!(out.chars().count() <= 50);
        let body = out.strip_suffix(TRUNCATION_MARKER).unwrap();
        assert_eq!(body.len() % 4, 0, "{body}");
        assert!(body.chars().all(|c| "&lt;".contains(c)));
        assert_eq!(mrkdwn_within("short", 50), "short");
    }

    #[test]
    fn links_only_from_safe_urls() {
        assert_eq!(
            link("https://runbooks.example/x?a=1&b=2", "Runbook <1>"),
            "<https://runbooks.example/x?a=1&amp;b=2|Runbook &lt;1&gt;>"
        );
        assert_eq!(link("https://evil|<!channel>", "Runbook"), "Runbook");
        assert_eq!(link("javascript:alert(1)", "Runbook"), "Runbook");
        assert_eq!(link("https://a b", "x"), "x");
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_markup_and_respects_the_cap(text in ".{0,400}", cap in 20usize..300) {
            let out = untrusted_mrkdwn(&text, cap, false);
            prop_assert!(out.chars().count() <= cap);
            prop_assert!(!out.contains('<') && !out.contains('>'));
            let plain = untrusted_plain(&text, cap, false);
            prop_assert!(plain.chars().count() <= cap);
        }
    }
}

//! The alert group's labels, read back from Alertmanager's `groupKey`. A silence made from a
//! Slack button should silence what the message is about as Alertmanager groups it (its
//! `group_by` labels: in Cabalmail `alertname` and `severity`), not one alert's every label
//! (an `instance` that changes when ECS replaces the task would let the alert through again).
//! The episode keeps the `groupKey`, which Alertmanager builds as `<route key>:<group labels>`,
//! the group labels printed the way Prometheus prints a label set: `{name="value", ...}`, names
//! sorted, values Go-quoted.
//!
//! The result only ever selects among the alert's own labels (`group_matchers`): a group key
//! that cannot be read, or that names a label the alert does not carry with that value, gives
//! no group labels, and the caller falls back to the alert's labels and says so.

use std::collections::BTreeMap;

/// Group keys longer than this are not read (Alertmanager's are a few hundred bytes).
const MAX_GROUP_KEY_BYTES: usize = 16 * 1024;

/// The group labels in `group_key`, or None when it is not Alertmanager's
/// `<route key>:{name="value", ...}` (or holds a value escaped in a way JSON cannot read).
pub fn group_labels(group_key: &str) -> Option<BTreeMap<String, String>> {
    if group_key.len() > MAX_GROUP_KEY_BYTES {
        return None;
    }
    let start = label_set_start(group_key)?;
    parse_label_set(&group_key[start..])
}

/// The labels a silence for this alert's group matches: the group labels when the group key
/// names them and the alert carries each with the same value (Some), else None.
pub fn group_matchers(
    group_key: &str,
    alert_labels: &BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    let group = group_labels(group_key)?;
    let consistent = !group.is_empty()
        && group
            .iter()
            .all(|(name, value)| alert_labels.get(name) == Some(value));
    consistent.then_some(group)
}

/// Where the group's label set starts: the last `:{` outside quotes whose `{` opens a set that
/// closes at the very end of the key.
fn label_set_start(key: &str) -> Option<usize> {
    let bytes = key.as_bytes();
    let mut depth: usize = 0;
    let mut candidate = None;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                at += quoted_len(&bytes[at..])?;
                continue;
            }
            b'{' => {
                if depth == 0 && at > 0 && bytes[at - 1] == b':' {
                    candidate = Some(at);
                }
                depth += 1;
            }
            b'}' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        at += 1;
    }
    (depth == 0 && bytes.last() == Some(&b'}')).then_some(candidate?)
}

/// `{name="value", name2="value2"}` (names bare or quoted) into a map; None for anything else.
fn parse_label_set(text: &str) -> Option<BTreeMap<String, String>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut labels = BTreeMap::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (name, after_name) = if rest.starts_with('"') {
            quoted(rest)?
        } else {
            let end = rest.find('=')?;
            let name = &rest[..end];
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
            if !valid {
                return None;
            }
            (name.to_string(), &rest[end..])
        };
        let after_equals = after_name.strip_prefix('=')?;
        let (value, after_value) = quoted(after_equals)?;
        if labels.insert(name, value).is_some() {
            return None;
        }
        rest = match after_value.strip_prefix(", ") {
            Some(next) if !next.is_empty() => next,
            Some(_) => return None,
            None if after_value.is_empty() => after_value,
            None => return None,
        };
    }
    Some(labels)
}

/// One Go-quoted string at the start of `text`, unquoted (the escapes JSON shares with Go; any
/// other makes the key unreadable), and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let len = quoted_len(text.as_bytes())?;
    let value = serde_json::from_str(&text[..len]).ok()?;
    Some((value, &text[len..]))
}

/// The length, quotes included, of the quoted string `bytes` starts with (a backslash escapes
/// the byte after it); None when it does not start with one or never ends.
fn quoted_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut at = 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return Some(at + 1),
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn alertmanager_group_keys_give_their_group_labels() {
        let cases = [
            (
                r#"{}:{alertname="SendmailDeferredSpike", severity="warning"}"#,
                labels(&[
                    ("alertname", "SendmailDeferredSpike"),
                    ("severity", "warning"),
                ]),
            ),
            // A nested route: its matchers come first and may hold `:{` and braces in quotes.
            (
                r#"{}/{severity=~"crit:{x}|warning"}:{alertname="A:{b}", tier="smtp-out"}"#,
                labels(&[("alertname", "A:{b}"), ("tier", "smtp-out")]),
            ),
            // Escapes Go and JSON share; a UTF-8 label name (quoted, Alertmanager 0.28+).
            (
                r#"{}:{"service.name"="imap", note="say \"hi\"\\ \u00e9"}"#,
                labels(&[("service.name", "imap"), ("note", "say \"hi\"\\ \u{e9}")]),
            ),
            (r#"{}:{}"#, BTreeMap::new()),
        ];
        for (key, expected) in cases {
            assert_eq!(group_labels(key), Some(expected), "{key}");
        }
    }

    #[test]
    fn anything_else_is_unreadable() {
        for key in [
            "",
            "g",
            "{}",
            r#"{}:{alertname="A"} trailing"#,
            r#"{}:{alertname="A",severity="b"}"#,
            r#"{}:{alertname="A", }"#,
            r#"{}:{alertname=A}"#,
            r#"{}:{alertname="unterminated}"#,
            r#"{}:{alertname="A", alertname="B"}"#,
            r#"{}:{al ert="A"}"#,
            r#"{}:{alertname="\x41"}"#,
            r#"}:{alertname="A"}"#,
        ] {
            assert_eq!(group_labels(key), None, "{key}");
        }
        assert_eq!(
            group_labels(&format!("{{}}:{{a=\"{}\"}}", "x".repeat(20_000))),
            None
        );
    }

    #[test]
    fn matchers_only_ever_come_from_the_alerts_own_labels() {
        let alert = labels(&[
            ("alertname", "SendmailDeferredSpike"),
            ("severity", "warning"),
            ("instance", "10.0.1.7:9100"),
        ]);
        let key = r#"{}:{alertname="SendmailDeferredSpike", severity="warning"}"#;
        assert_eq!(
            group_matchers(key, &alert),
            Some(labels(&[
                ("alertname", "SendmailDeferredSpike"),
                ("severity", "warning")
            ]))
        );
        // A group label the alert lacks, or has with another value; no group labels at all.
        for key in [
            r#"{}:{alertname="SendmailDeferredSpike", tier="smtp-out"}"#,
            r#"{}:{alertname="Other"}"#,
            r#"{}:{}"#,
            "unreadable",
        ] {
            assert_eq!(group_matchers(key, &alert), None, "{key}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(key in ".{0,200}", alert in proptest::collection::btree_map(".{0,5}", ".{0,5}", 0..4)) {
            let _ = group_labels(&key);
            if let Some(matchers) = group_matchers(&key, &alert) {
                prop_assert!(matchers.iter().all(|(n, v)| alert.get(n) == Some(v)));
            }
        }

        #[test]
        fn printed_label_sets_read_back(
            pairs in proptest::collection::btree_map("[a-z_][a-z0-9_]{0,10}", "[ -~]{0,20}", 0..6),
            route in "\\{\\}(/\\{[a-z]{1,5}=~?\"[a-z:{} ]{0,10}\"\\})?",
        ) {
            let body: Vec<String> = pairs
                .iter()
                .map(|(n, v)| format!("{n}={}", serde_json::to_string(v).unwrap()))
                .collect();
            let key = format!("{route}:{{{}}}", body.join(", "));
            prop_assert_eq!(group_labels(&key), Some(pairs));
        }
    }
}

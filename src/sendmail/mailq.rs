//! `mailq` output: sendmail's per-queue headers (`/var/spool/mqueue (3 requests)`), empty
//! queues (`/var/spool/mqueue is empty`), the `Total requests: N` tail, the `MSP Queue status...`
//! / `MTA Queue status...` sections Debian's `mailq` prints, and the per-message entries
//! (queue.c `print_single_queue`). Accepts the tail line alone (the runbook runs
//! `mailq | tail -1`) and CR LF line ends (ECS Exec output comes through a pseudo-terminal).

use serde::{Deserialize, Serialize};

use crate::report::redact::redact_addresses;

/// What a `mailq` output says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailqReport {
    /// The queue depth: the last `Total requests: N` (what `mailq | tail -1` shows, the MTA
    /// queue when sections are printed), else the sum of the queue headers, else 0 for
    /// `Mail queue is empty`; None when the output says nothing about the queue.
    pub total_requests: Option<u64>,
    pub queues: Vec<QueueSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<QueuedMessage>,
}

impl MailqReport {
    /// Hides the email local parts of every sender, status and recipient (`j***@gmail.com`).
    pub fn redact_local_parts(&mut self) {
        for message in &mut self.messages {
            let fields = message
                .sender
                .iter_mut()
                .chain(message.status.iter_mut())
                .chain(message.recipients.iter_mut());
            for field in fields {
                *field = redact_addresses(field).into_owned();
            }
        }
    }
}

/// One queue directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSummary {
    /// `MSP` or `MTA` when the output has sections.
    pub section: Option<String>,
    pub path: String,
    /// Requests in it (0 for `is empty`); None for `unknown number of entries`.
    pub requests: Option<u64>,
}

/// One message in the queue listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub queue_id: String,
    /// `*` being delivered, `X` too expensive to run now, `-` too young, `?` lost.
    pub flag: Option<char>,
    pub size: Option<u64>,
    /// `Sat Nov 28 20:14` as printed (no year).
    pub queued_at: Option<String>,
    pub sender: Option<String>,
    /// The reason sendmail keeps it (`Deferred: 421-4.7.28 ...`), or a quarantine reason.
    pub status: Option<String>,
    pub recipients: Vec<String>,
}

/// Parses `mailq` output. Never fails: lines it does not understand are skipped.
pub fn parse_mailq(output: &str) -> MailqReport {
    let mut report = MailqReport::default();
    let mut section: Option<String> = None;
    let mut last_total: Option<u64> = None;
    let mut said_empty = false;
    for raw in output.split('\n') {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(name) = trimmed.strip_suffix(" Queue status...") {
            section = Some(name.trim().to_string());
            continue;
        }
        if let Some(n) = trimmed.strip_prefix("Total requests:") {
            last_total = leading_number(n.trim_start()).or(last_total);
            continue;
        }
        if trimmed == "Mail queue is empty" || trimmed == "No mail in queue" {
            said_empty = true;
            continue;
        }
        if let Some(path) = trimmed.strip_suffix(" is empty") {
            report.queues.push(QueueSummary {
                section: section.clone(),
                path: path.to_string(),
                requests: Some(0),
            });
            continue;
        }
        if let Some(path) = trimmed.strip_suffix(": unknown number of entries") {
            report.queues.push(QueueSummary {
                section: section.clone(),
                path: path.to_string(),
                requests: None,
            });
            continue;
        }
        if let Some((path, n)) = trimmed.split_once(": entries=") {
            report.queues.push(QueueSummary {
                section: section.clone(),
                path: path.to_string(),
                requests: leading_number(n),
            });
            continue;
        }
        if let Some(queue) = queue_header(trimmed) {
            report.queues.push(QueueSummary {
                section: section.clone(),
                ..queue
            });
            continue;
        }
        if trimmed.starts_with("-----Q-ID-----") {
            continue;
        }
        if let Some(reason) = trimmed.strip_prefix("QUARANTINE:") {
            if let Some(message) = report.messages.last_mut() {
                message.status = Some(reason.trim().to_string());
            }
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if indented {
            if let Some(message) = report.messages.last_mut() {
                if let Some(status) = parenthesised(trimmed) {
                    message.status = Some(status.to_string());
                } else if line.starts_with('\t') && !trimmed.starts_with('(') {
                    message.recipients.push(trimmed.to_string());
                }
            }
            continue;
        }
        if let Some(message) = message_entry(line) {
            report.messages.push(message);
        }
    }
    report.total_requests = last_total.or_else(|| {
        if report.queues.is_empty() {
            said_empty.then_some(0)
        } else {
            report
                .queues
                .iter()
                // Saturating: a listing can claim any count (fuzzing found an overflow here).
                .try_fold(0u64, |total, q| q.requests.map(|r| total.saturating_add(r)))
        }
    });
    report
}

/// `/var/spool/mqueue (3 requests)`, `(1 request)`, `(12 requests, only 10 printed)`.
fn queue_header(trimmed: &str) -> Option<QueueSummary> {
    let body = trimmed.strip_suffix(')')?;
    let open = body.rfind(" (")?;
    let (path, inside) = (&body[..open], &body[open + 2..]);
    let inside = inside.split(',').next()?.trim();
    let count = inside
        .strip_suffix(" requests")
        .or_else(|| inside.strip_suffix(" request"))?;
    Some(QueueSummary {
        section: None,
        path: path.trim().to_string(),
        requests: Some(count.trim().parse().ok()?),
    })
}

/// `(Deferred: Connection refused by x)` or `8BITMIME   (Deferred: ...)`.
fn parenthesised(trimmed: &str) -> Option<&str> {
    let open = trimmed.find('(')?;
    let inner = trimmed[open + 1..]
        .strip_suffix(')')
        .unwrap_or(&trimmed[open + 1..]);
    let before = trimmed[..open].trim();
    (before.is_empty()
        || before
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    .then_some(inner)
}

/// `5ASKE3aB000812*    1234 Sat Nov 28 20:14 <sender@example.org>`; also
/// `5ASKE3aB000812 (job completed)`.
fn message_entry(line: &str) -> Option<QueuedMessage> {
    let bytes = line.as_bytes();
    let id_len = bytes
        .iter()
        .take(33)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if !(6..=32).contains(&id_len) {
        return None;
    }
    let queue_id = line[..id_len].to_string();
    let mut rest = &line[id_len..];
    let flag = match rest.as_bytes().first() {
        Some(&b) if matches!(b, b'*' | b'X' | b'-' | b'?') => {
            rest = &rest[1..];
            Some(b as char)
        }
        Some(b' ') | None => None,
        _ => return None,
    };
    let rest = rest.trim_start();
    if let Some(note) = rest.strip_prefix('(') {
        return Some(QueuedMessage {
            queue_id,
            flag,
            status: Some(note.trim_end_matches(')').to_string()),
            ..QueuedMessage::default()
        });
    }
    let (size, rest) = rest.split_once(' ')?;
    let size: u64 = size.parse().ok()?;
    let rest = rest.trim_start();
    // ctime's first 16 characters: `Sat Nov 28 20:14`.
    let (queued_at, sender) = match rest.get(..16) {
        Some(date) if date.as_bytes().get(13) == Some(&b':') => (Some(date), rest[16..].trim()),
        _ => (None, rest.trim()),
    };
    Some(QueuedMessage {
        queue_id,
        flag,
        size: Some(size),
        queued_at: queued_at.map(str::to_string),
        sender: (!sender.is_empty()).then(|| sender.to_string()),
        status: None,
        recipients: Vec::new(),
    })
}

fn leading_number(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_line_alone() {
        assert_eq!(
            parse_mailq("\t\tTotal requests: 42\r\n").total_requests,
            Some(42)
        );
        assert_eq!(parse_mailq("Total requests: 0").total_requests, Some(0));
        assert_eq!(parse_mailq("").total_requests, None);
        assert_eq!(parse_mailq("sh: mailq: not found\r\n").total_requests, None);
        assert_eq!(parse_mailq("Mail queue is empty\n").total_requests, Some(0));
    }

    #[test]
    fn queue_counts_that_overflow_when_added_saturate() {
        // Found by fuzzing: two headers near u64::MAX and no total line panicked (overflow).
        let out = "\t\t/var/spool/mqueue (18446744073709551615 requests)\n\t\t/var/spool/mqueue/q2 (18446744073709551615 requests)\n";
        assert_eq!(parse_mailq(out).total_requests, Some(u64::MAX));
    }

    #[test]
    fn debian_sections() {
        let out = "MSP Queue status...\r\n/var/spool/mqueue-client is empty\r\n\t\tTotal requests: 0\r\nMTA Queue status...\r\n\t\t/var/spool/mqueue (2 requests)\r\n-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\r\n5ASKE3aB000812*    1234 Sat Nov 28 20:14 <me@example.org>\r\n                 (Deferred: 421-4.7.28 rate limited)\r\n\t\t\t\t\t <a@gmail.com>\r\n\t\t\t\t\t <b@gmail.com>\r\n5ASKE3aC000813     567 Sat Nov 28 20:15 <me@example.org>\r\n    8BITMIME   (Deferred: Connection refused by mx.example.)\r\n\t\t\t\t\t <c@example.net>\r\n\t\tTotal requests: 2\r\n";
        let r = parse_mailq(out);
        assert_eq!(r.total_requests, Some(2));
        assert_eq!(r.queues.len(), 2);
        assert_eq!(r.queues[0].section.as_deref(), Some("MSP"));
        assert_eq!(r.queues[0].requests, Some(0));
        assert_eq!(r.queues[1].path, "/var/spool/mqueue");
        assert_eq!(r.queues[1].requests, Some(2));
        assert_eq!(r.messages.len(), 2);
        let m = &r.messages[0];
        assert_eq!(m.queue_id, "5ASKE3aB000812");
        assert_eq!(m.flag, Some('*'));
        assert_eq!(m.size, Some(1234));
        assert_eq!(m.queued_at.as_deref(), Some("Sat Nov 28 20:14"));
        assert_eq!(m.sender.as_deref(), Some("<me@example.org>"));
        assert_eq!(
            m.status.as_deref(),
            Some("Deferred: 421-4.7.28 rate limited")
        );
        assert_eq!(m.recipients, ["<a@gmail.com>", "<b@gmail.com>"]);
        assert_eq!(
            r.messages[1].status.as_deref(),
            Some("Deferred: Connection refused by mx.example.")
        );
    }

    #[test]
    fn local_parts_are_redacted_on_request() {
        let mut r = parse_mailq("5ASKE3aB000812*    1234 Sat Nov 28 20:14 <me@example.org>\r\n                 (Deferred: 450 <jane@gmail.com> busy)\r\n\t\t\t\t\t <a@gmail.com>\r\n");
        assert_eq!(r.messages[0].recipients, ["<a@gmail.com>"]);
        r.redact_local_parts();
        let m = &r.messages[0];
        for text in [
            m.sender.as_deref().unwrap(),
            m.status.as_deref().unwrap(),
            &m.recipients[0],
        ] {
            assert!(
                !text.contains("me@") && !text.contains("jane@") && !text.contains("<a@"),
                "{text}"
            );
        }
        assert!(
            m.sender.as_deref().unwrap().contains("@example.org"),
            "{m:?}"
        );
        assert!(m.recipients[0].contains("@gmail.com"), "{m:?}");
    }

    #[test]
    fn headers_without_total() {
        let r = parse_mailq("\t\t/var/spool/mqueue (1 request)\n/var/spool/mqueue2 (12 requests, only 10 printed)\n");
        assert_eq!(r.total_requests, Some(13));
        let r = parse_mailq("/var/spool/mqueue is empty\n");
        assert_eq!(r.total_requests, Some(0));
        let r = parse_mailq("/var/spool/mqueue: unknown number of entries\n");
        assert_eq!(r.total_requests, None);
        let r = parse_mailq("/var/spool/mqueue: entries=7\n\t\tTotal requests: 7 (about)\n");
        assert_eq!(r.total_requests, Some(7));
    }

    #[test]
    fn job_completed_and_garbage() {
        let r = parse_mailq(
            "\t\t/var/spool/mqueue (1 request)\n5ASKE3aB000812 (job completed)\n(((\n\t\t\t\n",
        );
        assert_eq!(r.messages[0].status.as_deref(), Some("job completed"));
        assert_eq!(r.total_requests, Some(1));
    }
}

//! The one address redactor. Every text that leaves the process (Slack, PagerDuty, the terminal,
//! the logs, the operator API, `parse` output) goes through [`redact_addresses`] unless the
//! operator set `privacy.show_local_parts`: the people whose mail this is are the reason the
//! product exists, and their local parts are personal data.
//!
//! It finds the `@` of an address (also written `%40`, `&#64;` or `&#x40;`), takes the domain
//! after it (dotted or dotless, IDN, or an IP literal `[…]`) and the local part before it (RFC
//! 5322 atext, any non-ASCII character per RFC 6531, or a quoted string), and keeps the first
//! character of the local part and the domain: `jane.doe@example.com` → `j***@example.com`,
//! `"john doe"@example.com` → `"j***"@example.com`. A log key in front of the address
//! (`to=`, `ctladdr=`) is kept; any other `x=` is part of the local part (`first=last@`).

use std::borrow::Cow;

/// Keys sendmail and Alertmanager texts write right before an address; kept in clear.
const KEYS: &[&str] = &[
    "to",
    "from",
    "ctladdr",
    "orcpt",
    "sender",
    "recipient",
    "rcpt",
    "mailfrom",
    "rcptto",
];

/// The longest quoted local part looked for (RFC 5321 caps a local part at 64 octets).
const MAX_QUOTED_BYTES: usize = 256;

/// `text` with every address's local part cut to its first character and `***`; unchanged when
/// `show_local_parts` is set.
pub fn redact(text: &str, show_local_parts: bool) -> Cow<'_, str> {
    if show_local_parts {
        Cow::Borrowed(text)
    } else {
        redact_addresses(text)
    }
}

/// Redacts the local part of every address in `text` (see the module documentation).
pub fn redact_addresses(text: &str) -> Cow<'_, str> {
    let Some(mut next) = next_marker(text, 0) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // bytes of `text` already in `out`
    let mut floor = 0; // a local part never starts before this (the end of the last marker used)
    loop {
        let (at, marker_len) = next;
        let domain_start = at + marker_len;
        if domain_end(text, domain_start) > domain_start && !inside_quotes(text, floor, at) {
            if let Some(start) = local_start(text, floor, at) {
                let local = &text[start..at];
                let kept = key_prefix(local);
                out.push_str(&text[copied..start + kept]);
                push_redacted(&mut out, &local[kept..]);
                copied = at;
                floor = domain_start;
            }
        }
        match next_marker(text, domain_start) {
            Some(found) => next = found,
            None => break,
        }
    }
    if copied == 0 && out.is_empty() {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The next `@`, `%40`, `&#64;` or `&#x40;` at or after `from`: its byte offset and length.
fn next_marker(text: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'@' => return Some((i, 1)),
            b'%' if bytes[i + 1..].starts_with(b"40") => return Some((i, 3)),
            b'&' => {
                let rest = &bytes[i..];
                if rest.starts_with(b"&#64;") {
                    return Some((i, 5));
                }
                if rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"&#x40;") {
                    return Some((i, 6));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where the domain starting at `start` ends (`start` when there is none).
fn domain_end(text: &str, start: usize) -> usize {
    let rest = &text[start..];
    if let Some(literal) = rest.strip_prefix('[') {
        let inside = literal
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-')))
            .unwrap_or(literal.len());
        if inside == 0 {
            return start;
        }
        let closed = literal[inside..].starts_with(']') as usize;
        return start + 1 + inside + closed;
    }
    let mut end = start;
    for (offset, c) in rest.char_indices() {
        let ok = if offset == 0 {
            c.is_alphanumeric() || (!c.is_ascii() && is_visible(c))
        } else {
            is_domain_char(c)
        };
        if !ok {
            break;
        }
        end = start + offset + c.len_utf8();
    }
    end
}

fn is_domain_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-' | '_') || (!c.is_ascii() && is_visible(c))
}

/// RFC 5322 atext plus `.`, and (RFC 6531) any visible non-ASCII character.
fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~.".contains(c)
        || (!c.is_ascii() && is_visible(c))
}

fn is_visible(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !super::sanitize::is_invisible(c)
}

/// Where the local part ending at `at` starts, never before `floor`; `None` when there is none.
fn local_start(text: &str, floor: usize, at: usize) -> Option<usize> {
    let before = &text[floor..at];
    if let Some(inside) = before.strip_suffix('"') {
        // A quoted string: the nearest opening quote not escaped by a backslash, else the
        // nearest quote at all.
        let window_start = inside.len().saturating_sub(MAX_QUOTED_BYTES);
        let mut open = None;
        let mut any = None;
        for (i, c) in inside.char_indices().rev() {
            if i < window_start {
                break;
            }
            if c == '"' {
                any.get_or_insert(i);
                if !inside[..i].ends_with('\\') {
                    open = Some(i);
                    break;
                }
            }
        }
        return open.or(any).map(|i| floor + i);
    }
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_local_char(*c))
        .last()
        .map(|(i, _)| floor + i)?;
    Some(start)
}

/// Whether the marker at `at` is inside a quoted local part (`"a@b"@example.com`): a quote
/// opened before it, and the first quote after it is followed by a marker. The outer marker then
/// redacts the whole quoted string.
fn inside_quotes(text: &str, floor: usize, at: usize) -> bool {
    let window_end = (at + MAX_QUOTED_BYTES).min(text.len());
    let after = &text.as_bytes()[at + 1..window_end];
    let Some(close) = memchr::memchr(b'"', after).map(|i| at + 1 + i) else {
        return false;
    };
    let opened = memchr::memchr(
        b'"',
        &text.as_bytes()[floor.max(at.saturating_sub(MAX_QUOTED_BYTES))..at],
    )
    .is_some();
    opened
        && next_marker(text, close + 1).is_some_and(|(next, len)| {
            next == close + 1 && domain_end(text, next + len) > next + len
        })
}

/// The length of a known `key=` in front of an unquoted local part (0 when there is none).
fn key_prefix(local: &str) -> usize {
    let Some((key, rest)) = local.split_once('=') else {
        return 0;
    };
    if rest.is_empty() || !KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        return 0;
    }
    key.len() + 1
}

/// Writes the redacted form of `local`: its first character and `***` (inside the quotes of a
/// quoted local part).
fn push_redacted(out: &mut String, local: &str) {
    if let Some(inside) = local.strip_prefix('"') {
        out.push('"');
        if let Some(first) = inside.chars().next().filter(|c| *c != '"' && *c != '\\') {
            out.push(first);
        }
        out.push_str("***\"");
        return;
    }
    if let Some(first) = local.chars().next() {
        out.push(first);
    }
    out.push_str("***");
}

#[cfg(test)]
mod tests;

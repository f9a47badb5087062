//! Email local parts are personal data: samples and annotations show `j***@gmail.com` unless the
//! operator turns that off (`privacy.show_local_parts`). Log text is also capped in length.

use std::borrow::Cow;

/// Replaces the local part of every address in `text` with its first character and `***`
/// (`<john.doe@gmail.com>` -> `<j***@gmail.com>`; a quoted local part becomes `"***"`).
pub fn redact_local_parts(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if memchr::memchr(b'@', bytes).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // bytes of `text` already handled
    let mut search_from = 0;
    while let Some(found) = memchr::memchr(b'@', &bytes[search_from..]) {
        let at = search_from + found;
        search_from = at + 1;
        if at < copied
            || !bytes
                .get(at + 1)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'[')
        {
            continue;
        }
        if at > copied && bytes[at - 1] == b'"' {
            // "quoted local"@domain
            let Some(open) = text[copied..at - 1].rfind('"').map(|i| copied + i) else {
                continue;
            };
            out.push_str(&text[copied..open]);
            out.push_str("\"***\"");
            copied = at;
            continue;
        }
        let mut start = at;
        while start > copied && is_local_byte(bytes[start - 1]) {
            start -= 1;
        }
        if start == at {
            continue;
        }
        out.push_str(&text[copied..start]);
        if bytes[start].is_ascii_alphanumeric() {
            out.push(bytes[start] as char);
        }
        out.push_str("***");
        copied = at;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b"!#$%&'*+-/?^_`{|}~.".contains(&b)
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut with `...`.
pub fn cap_length(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_addresses() {
        assert_eq!(
            redact_local_parts(
                "to=<john.doe@gmail.com>,<x@y.example>, ctladdr=<me@example.org> (1/1)"
            ),
            "to=<j***@gmail.com>,<x***@y.example>, ctladdr=<m***@example.org> (1/1)"
        );
        assert_eq!(
            redact_local_parts("from=alice+tag@x.example"),
            "from=a***@x.example"
        );
        assert_eq!(redact_local_parts("\"a b\"@x.example"), "\"***\"@x.example");
        assert_eq!(redact_local_parts("no address"), "no address");
        assert_eq!(redact_local_parts("a @ b, @x, x@"), "a @ b, @x, x@");
        assert_eq!(redact_local_parts("ünï@x.example"), "***@x.example");
        assert_eq!(redact_local_parts("_x@[192.0.2.1]"), "***@[192.0.2.1]");
    }

    #[test]
    fn caps() {
        assert_eq!(cap_length("abcdef", 10), "abcdef");
        assert_eq!(cap_length("abcdefghijkl", 8), "abcde...");
        assert_eq!(cap_length("ééééé", 6), "é...");
    }
}

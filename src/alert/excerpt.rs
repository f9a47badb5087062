//! Bounded quoting of input values. An error body or a log line that repeats what a client sent
//! must not repeat all of it: a 500 KB `version` would otherwise come back whole in the 400 and
//! be written as one 500 KB log line. Every place that quotes a webhook value goes through here.

use std::borrow::Cow;

/// The most bytes of any one input value an error body or a log line quotes.
pub const MAX_QUOTED_BYTES: usize = 200;

/// `text` when it is at most [`MAX_QUOTED_BYTES`] long; otherwise its first bytes (cut at a
/// character boundary) followed by `…(N more bytes)`.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_QUOTED_BYTES {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}…({} more bytes)",
        &text[..end],
        text.len() - end
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(excerpt("abc"), "abc");
        let exact = "x".repeat(MAX_QUOTED_BYTES);
        assert_eq!(excerpt(&exact), exact.as_str());
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let long = "é".repeat(1000);
        let cut = excerpt(&long);
        assert!(cut.len() < MAX_QUOTED_BYTES + 30, "{}", cut.len());
        assert!(cut.ends_with("…(1800 more bytes)"), "{cut}");
    }
}

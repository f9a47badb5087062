//! Log text shown as samples and replies is capped in length, so one pathological line cannot
//! fill a report. (Addresses in it are redacted by the core's one redactor, `report::redact`.)

use std::borrow::Cow;

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
    fn caps() {
        assert_eq!(cap_length("abcdef", 10), "abcdef");
        assert_eq!(cap_length("abcdefghijkl", 8), "abcde...");
        assert_eq!(cap_length("ééééé", 6), "é...");
    }
}

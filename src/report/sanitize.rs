//! The one sanitizer: text from outside (labels, annotations, log lines, replies) made inert
//! before any output. It drops what a reader cannot see but a terminal or a renderer acts on —
//! bidi overrides and isolates (U+202A–U+202E, U+2066–U+2069), zero-width and other invisible
//! formatting characters (Unicode category Cf), control characters — and, in single-line fields,
//! folds line breaks into spaces so a value cannot start a line of its own ("FAKE: action
//! ignore").
//!
//! The Cf table is written out: it is short, stable across Unicode versions, and a whole
//! Unicode-properties dependency for one category is not worth it.

use std::borrow::Cow;

/// Unicode general category Cf (format characters), as ranges, plus the variation selectors and
/// U+115F/U+1160/U+3164/U+FFA0 (Hangul fillers that render as nothing).
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
    ('\u{E0100}', '\u{E01EF}'),
];

/// Whether `c` is an invisible formatting character (dropped by the sanitizer).
pub fn is_invisible(c: char) -> bool {
    INVISIBLE
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// For a single-line field: invisible characters dropped, line breaks and other controls
/// folded into one space each.
pub fn sanitize_line(text: &str) -> Cow<'_, str> {
    clean(text, false)
}

/// For a multi-line field: as [`sanitize_line`], but `\n` is kept (`\r\n` becomes `\n`).
pub fn sanitize_block(text: &str) -> Cow<'_, str> {
    clean(text, true)
}

fn clean(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let needs = text
        .chars()
        .any(|c| is_invisible(c) || c.is_control() || is_line_break(c));
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_invisible(c) {
            continue;
        }
        if keep_newlines && c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        if keep_newlines && c == '\n' {
            out.push('\n');
        } else if c.is_control() || is_line_break(c) {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// For a log line: every control, line break and invisible character written as an escape
/// (`\n`, `\u{1b}`, `\u{202e}`), so one field can neither start a forged line nor send
/// escape codes to a terminal, and what was there stays visible to whoever reads the log.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let needs = text
        .chars()
        .any(|c| is_invisible(c) || c.is_control() || is_line_break(c));
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_invisible(c) || c.is_control() || is_line_break(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn log_escapes_show_what_was_there() {
        assert_eq!(
            escape_controls("g\n2026 INFO forged\u{1b}[2J\u{202e}x"),
            "g\\n2026 INFO forged\\u{1b}[2J\\u{202e}x"
        );
        assert!(matches!(escape_controls("plain é"), Cow::Borrowed(_)));
    }

    #[test]
    fn drops_bidi_and_zero_width_and_folds_lines() {
        assert_eq!(
            sanitize_line("a\u{202E}b\u{200B}c\u{2066}d\u{FEFF}"),
            "abcd"
        );
        assert_eq!(
            sanitize_line("ok\nFAKE: action ignore"),
            "ok FAKE: action ignore"
        );
        assert_eq!(sanitize_line("a\u{1b}[31mred\r\n"), "a [31mred  ");
        assert_eq!(sanitize_block("one\r\ntwo\u{2028}three"), "one\ntwo three");
        assert!(matches!(sanitize_line("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_table_is_sorted_and_disjoint() {
        for pair in INVISIBLE.windows(2) {
            assert!(pair[0].1 < pair[1].0, "{pair:?}");
        }
        for (low, high) in INVISIBLE {
            assert!(low <= high);
        }
        assert!(is_invisible('\u{202A}') && is_invisible('\u{2069}') && is_invisible('\u{200D}'));
        assert!(!is_invisible('a') && !is_invisible('é') && !is_invisible(' '));
    }

    proptest! {
        #[test]
        fn a_line_has_no_break_control_or_invisible_left(text in "\\PC{0,50}[\u{202A}-\u{202E}\u{2066}-\u{2069}\u{200B}-\u{200F}\n\r\u{1b}\u{2028}]{0,5}\\PC{0,50}") {
            let out = sanitize_line(&text);
            prop_assert!(!out.chars().any(|c| is_invisible(c) || c.is_control() || is_line_break(c)), "{out:?}");
            let block = sanitize_block(&text);
            prop_assert!(!block.chars().any(|c| is_invisible(c) || (c.is_control() && c != '\n')), "{block:?}");
        }
    }
}

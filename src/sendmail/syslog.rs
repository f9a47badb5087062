//! The syslog envelope around a sendmail message. rsyslog writes `mail.*` in the traditional
//! file format `Mon DD HH:MM:SS host prog[pid]: message`; a log shipper may strip that prefix, or
//! rsyslog may be configured for RFC 3339 timestamps. This parser accepts all three and never
//! fails: a line it does not recognise is all message.

use super::line::find_byte;

/// One syslog line split into its parts; every part borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogLine<'a> {
    /// `Nov 28 20:14:03` or an RFC 3339 timestamp; no year and no zone in the traditional form.
    pub timestamp: Option<&'a str>,
    pub host: Option<&'a str>,
    /// The tag before `[pid]`: `sm-mta`, `sendmail`, `opendkim`, `dovecot`, ...
    pub program: Option<&'a str>,
    pub pid: Option<&'a str>,
    /// The text after the tag, or the whole line when there is no recognisable prefix.
    pub message: &'a str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The months as fixed-size byte arrays: compared inline, without a call per month.
const MONTH_CODES: [[u8; 3]; 12] = {
    let mut codes = [[0u8; 3]; 12];
    let mut i = 0;
    while i < 12 {
        let name = MONTHS[i].as_bytes();
        codes[i] = [name[0], name[1], name[2]];
        i += 1;
    }
    codes
};

/// Splits a line (with or without its line end) into its syslog parts.
pub fn parse_syslog(line: &str) -> SyslogLine<'_> {
    let line = line.trim_end_matches(['\n', '\r']);
    let bare = SyslogLine {
        timestamp: None,
        host: None,
        program: None,
        pid: None,
        message: line,
    };
    let (timestamp, rest) = match split_timestamp(line) {
        Some(split) => split,
        None => {
            // No timestamp: a shipper may have kept only `prog[pid]: message`.
            return match split_tag(line, true) {
                Some((program, pid, message)) => SyslogLine {
                    program: Some(program),
                    pid,
                    message,
                    ..bare
                },
                None => bare,
            };
        }
    };
    let Some((host, after_host)) = split_at_space(rest) else {
        return SyslogLine {
            timestamp: Some(timestamp),
            message: rest,
            ..bare
        };
    };
    match split_tag(after_host, false) {
        Some((program, pid, message)) => SyslogLine {
            timestamp: Some(timestamp),
            host: Some(host),
            program: Some(program),
            pid,
            message,
        },
        None => SyslogLine {
            timestamp: Some(timestamp),
            host: Some(host),
            message: after_host,
            ..bare
        },
    }
}

/// `Mon DD HH:MM:SS ` (day space-padded) or an RFC 3339 timestamp followed by a space.
fn split_timestamp(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    if bytes.len() > 16
        && bytes[3] == b' '
        && (bytes[4] == b' ' || bytes[4].is_ascii_digit())
        && bytes[5].is_ascii_digit()
        && bytes[6] == b' '
        && is_clock(&bytes[7..15])
        && bytes[15] == b' '
        && MONTH_CODES.contains(&[bytes[0], bytes[1], bytes[2]])
    {
        return Some((&line[..15], &line[16..]));
    }
    // 2026-11-28T20:14:03[.ffffff][+00:00|Z]
    if bytes.len() > 20
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && is_clock(&bytes[11..19])
    {
        return split_at_space(line);
    }
    None
}

fn is_clock(b: &[u8]) -> bool {
    b.len() == 8
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2] == b':'
        && b[3].is_ascii_digit()
        && b[4].is_ascii_digit()
        && b[5] == b':'
        && b[6].is_ascii_digit()
        && b[7].is_ascii_digit()
}

/// `(before, after)` the first space. Byte search: a space is a character boundary.
fn split_at_space(text: &str) -> Option<(&str, &str)> {
    let space = find_byte(text.as_bytes(), b' ')?;
    Some((&text[..space], &text[space + 1..]))
}

/// Longest tag accepted.
const MAX_TAG: usize = 64;

/// `prog[pid]: rest` or (when `need_pid` is false) `prog: rest`. The tag is one token of
/// printable characters without `:`.
fn split_tag(text: &str, need_pid: bool) -> Option<(&str, Option<&str>, &str)> {
    let colon = tag_end(text)?;
    let tag = &text[..colon];
    let message = text.get(colon + 2..).unwrap_or("");
    if let Some(open) = find_byte(tag.as_bytes(), b'[') {
        let pid = tag[open + 1..].strip_suffix(']')?;
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || open == 0 {
            return None;
        }
        Some((&tag[..open], Some(pid), message))
    } else if need_pid {
        None
    } else {
        Some((tag, None, message))
    }
}

/// The length of the tag: the text before the first `: ` (or before a final `:` when there is
/// no `: `), when that is 1 to 64 bytes without spaces, control characters or DEL. Only the
/// first 66 bytes are looked at: the first byte that may not be in a tag ends the search, and a
/// valid tag is followed by `: `, so that byte must be the space right after the colon.
fn tag_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let window = &bytes[..bytes.len().min(MAX_TAG + 2)];
    let colon = match first_space_or_control(window) {
        Some(stop) if stop > 0 && bytes[stop] == b' ' && bytes[stop - 1] == b':' => stop - 1,
        Some(_) => return None,
        // The whole text is one token: a tag only if it ends in `:`.
        None if window.len() == bytes.len() => text.strip_suffix(':')?.len(),
        None => return None,
    };
    (1..=MAX_TAG).contains(&colon).then_some(colon)
}

/// The first byte of `bytes` that is a space, a control character or DEL. Eight bytes at a
/// time: a tag is ten to twenty bytes long, and a byte loop mispredicts its end on every line.
fn first_space_or_control(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // Bytes up to 0x20, and DEL (zero after the xor); the lowest flag of each test is exact.
        let low = word.wrapping_sub(ONES * 0x21) & !word & HIGHS;
        let del = word ^ (ONES * 0x7f);
        let del = del.wrapping_sub(ONES) & !del & HIGHS;
        let found = low | del;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| b <= b' ' || b == b'\x7f')
        .map(|offset| at + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_format() {
        let line = parse_syslog(
            "Nov 28 20:14:03 ip-10-0-2-17 sm-mta[812]: 5ASKE3aB000812: to=<a@b.c>, stat=Sent\n",
        );
        assert_eq!(line.timestamp, Some("Nov 28 20:14:03"));
        assert_eq!(line.host, Some("ip-10-0-2-17"));
        assert_eq!(line.program, Some("sm-mta"));
        assert_eq!(line.pid, Some("812"));
        assert_eq!(line.message, "5ASKE3aB000812: to=<a@b.c>, stat=Sent");
    }

    #[test]
    fn space_padded_day_and_tag_without_pid() {
        let line = parse_syslog("Dec  1 01:02:03 host kernel: something happened");
        assert_eq!(line.timestamp, Some("Dec  1 01:02:03"));
        assert_eq!(line.program, Some("kernel"));
        assert_eq!(line.pid, None);
        assert_eq!(line.message, "something happened");
    }

    #[test]
    fn rfc3339_timestamp() {
        let line = parse_syslog("2026-11-28T20:14:03.123456+00:00 mx1 sendmail[9]: x: to=<a@b>");
        assert_eq!(line.timestamp, Some("2026-11-28T20:14:03.123456+00:00"));
        assert_eq!(line.program, Some("sendmail"));
        assert_eq!(line.message, "x: to=<a@b>");
    }

    #[test]
    fn stripped_prefixes() {
        let line = parse_syslog("sm-mta[812]: 5ASKE3aB000812: to=<a@b.c>, stat=Sent");
        assert_eq!(line.program, Some("sm-mta"));
        assert_eq!(line.message, "5ASKE3aB000812: to=<a@b.c>, stat=Sent");
        // A queue id is not a program tag: without a pid the whole line is the message.
        let line = parse_syslog("5ASKE3aB000812: to=<a@b.c>, stat=Sent\r\n");
        assert_eq!(line.program, None);
        assert_eq!(line.message, "5ASKE3aB000812: to=<a@b.c>, stat=Sent");
    }

    /// The straightforward definition `tag_end` implements in one bounded pass.
    fn tag_end_reference(text: &str) -> Option<usize> {
        let colon = text
            .find(": ")
            .or_else(|| text.strip_suffix(':').map(|t| t.len()))?;
        let tag = &text[..colon];
        let bad = tag.bytes().any(|b| b <= b' ' || b == b'\x7f');
        (!tag.is_empty() && tag.len() <= MAX_TAG && !bad).then_some(colon)
    }

    proptest::proptest! {
        #[test]
        fn tag_end_agrees_with_its_definition(
            text in "([a-z:\\[\\] \\x00\\x7f\\t]{0,70}|[a-z]{60,70}(: |:)?[a-z :]{0,5})"
        ) {
            proptest::prop_assert_eq!(tag_end(&text), tag_end_reference(&text));
        }

        #[test]
        fn tag_end_agrees_on_any_text(text in "\\PC{0,80}") {
            proptest::prop_assert_eq!(tag_end(&text), tag_end_reference(&text));
        }
    }

    proptest::proptest! {
        #[test]
        fn first_space_or_control_agrees_with_a_byte_loop(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(vec![b' ', b'!', 0x1f, 0x7f, 0x80, 0xff, b'a']),
                ],
                0..40,
            ),
        ) {
            let expected = text.iter().position(|&b| b <= b' ' || b == 0x7f);
            proptest::prop_assert_eq!(first_space_or_control(&text), expected);
        }
    }

    #[test]
    fn tag_end_edges() {
        for text in [
            "",
            ":",
            "a:",
            "a: ",
            "a:b",
            ": x",
            "a :x",
            "a\x7f: x",
            "é[1]: x",
            "a: b: c",
            &format!("{}: x", "t".repeat(64)),
            &format!("{}: x", "t".repeat(65)),
            &format!("{}:", "t".repeat(64)),
            &format!("{}:", "t".repeat(65)),
        ] {
            assert_eq!(tag_end(text), tag_end_reference(text), "{text:?}");
        }
    }

    #[test]
    fn odd_lines_are_all_message() {
        for text in [
            "",
            "Nov",
            "Nov 28 20:14:03",
            "Nov 28 20:14:03 host",
            "[]: x",
            "x[y]: z",
        ] {
            let line = parse_syslog(text);
            assert!(line.message.len() <= text.len());
        }
        let line = parse_syslog("Nov 28 20:14:03 host");
        assert_eq!(line.timestamp, Some("Nov 28 20:14:03"));
        assert_eq!(line.message, "host");
    }
}

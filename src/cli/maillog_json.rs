//! The `parse maillog` record (design.md, `parse maillog` contract) written as one JSON line by
//! hand. It is the innermost loop of the command: serde's generic serializer spent about a
//! sixth of the run escaping strings byte by byte and dispatching per field. This writer emits
//! exactly the bytes serde_json's compact serializer emits for the same record (the tests below
//! compare the two on the fixture corpus and on arbitrary strings: control characters, quotes,
//! backslashes, any Unicode), and skips over runs of plain bytes eight at a time.

use crate::sendmail::dsn::code_text;
use crate::sendmail::{Delivery, Dsn};

/// Appends `{"line":N,"queue_id":...,"reply_dsn":...}` and a newline to `out`.
pub(crate) fn push_record(out: &mut Vec<u8>, line: u64, delivery: &Delivery<'_>) {
    // Room for the whole record at once: keys, codes and numbers fit in 256 bytes, and no
    // string grows by more than six times its length when escaped.
    let strings = [
        delivery.queue_id,
        delivery.recipient_domain.as_deref(),
        delivery.provider,
        delivery.relay,
        delivery.reply,
    ];
    out.reserve(256 + strings.iter().flatten().map(|s| s.len() * 6).sum::<usize>());
    out.extend_from_slice(b"{\"line\":");
    out.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
    out.extend_from_slice(b",\"queue_id\":");
    push_optional_str(out, delivery.queue_id);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(delivery.status.as_str().as_bytes());
    out.extend_from_slice(b"\",\"dsn\":");
    push_optional_dsn(out, delivery.dsn);
    out.extend_from_slice(b",\"dsn_class\":");
    match delivery.dsn {
        Some(dsn) => push_code(out, dsn.class, dsn.subject, None),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"category\":\"");
    out.extend_from_slice(delivery.category().as_str().as_bytes());
    out.extend_from_slice(b"\",\"recipient_domain\":");
    push_optional_str(out, delivery.recipient_domain.as_deref());
    out.extend_from_slice(b",\"provider\":");
    push_optional_str(out, delivery.provider);
    out.extend_from_slice(b",\"relay\":");
    push_optional_str(out, delivery.relay);
    out.extend_from_slice(b",\"reply\":");
    push_optional_str(out, delivery.reply);
    out.extend_from_slice(b",\"reply_dsn\":");
    push_optional_dsn(out, delivery.reply_dsn);
    out.extend_from_slice(b"}\n");
}

fn push_optional_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

fn push_optional_dsn(out: &mut Vec<u8>, dsn: Option<Dsn>) {
    match dsn {
        Some(dsn) => push_code(out, dsn.class, dsn.subject, Some(dsn.detail)),
        None => out.extend_from_slice(b"null"),
    }
}

/// A code as a JSON string: only digits and dots, nothing to escape.
fn push_code(out: &mut Vec<u8>, class: u8, subject: u16, detail: Option<u16>) {
    let (text, len) = code_text(class, subject, detail);
    out.push(b'"');
    out.extend_from_slice(&text[..len]);
    out.push(b'"');
}

/// What serde_json writes for a byte of a string: 0 for the byte itself, else the letter of its
/// short escape (`\n`), or `u` for `\u00XX`. Bytes from 0x7f up (DEL, UTF-8 sequences) pass.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `text` as a JSON string, quoted and escaped as serde_json does.
pub(crate) fn push_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut start = 0;
    loop {
        let at = next_escape(bytes, start);
        out.extend_from_slice(&bytes[start..at]);
        let Some(&byte) = bytes.get(at) else { break };
        match ESCAPE[usize::from(byte)] {
            b'u' => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
            letter => out.extend_from_slice(&[b'\\', letter]),
        }
        start = at + 1;
    }
    out.push(b'"');
}

/// The offset of the first byte at or after `from` that needs an escape, or `bytes.len()`.
fn next_escape(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    /// Whether any byte of `word` is zero (exact for the word as a whole).
    const fn has_zero(word: u64) -> bool {
        word.wrapping_sub(ONES) & !word & HIGHS != 0
    }
    let mut at = from;
    // Eight bytes at a time while none is a control character, a quote or a backslash.
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
        if control || has_zero(word ^ (ONES * u64::from(b'"'))) || has_zero(word ^ (ONES * 0x5c)) {
            break;
        }
        at += 8;
    }
    while at < bytes.len() && ESCAPE[usize::from(bytes[at])] == 0 {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::ser::SerializeStruct;
    use serde::{Serialize, Serializer};

    use super::*;
    use crate::sendmail::{classify_line, ProviderTable};

    /// The reference: the record as serde_json writes it (the command's output before this
    /// writer existed).
    struct Numbered<'a, 'd> {
        line: u64,
        delivery: &'d Delivery<'a>,
    }

    impl Serialize for Numbered<'_, '_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut state = serializer.serialize_struct("Delivery", Delivery::FIELDS + 1)?;
            state.serialize_field("line", &self.line)?;
            self.delivery.serialize_fields(&mut state)?;
            state.end()
        }
    }

    fn by_serde(line: u64, delivery: &Delivery<'_>) -> Vec<u8> {
        let mut out = serde_json::to_vec(&Numbered { line, delivery }).unwrap();
        out.push(b'\n');
        out
    }

    fn by_hand(line: u64, delivery: &Delivery<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        push_record(&mut out, line, delivery);
        out
    }

    fn escaped(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        push_str(&mut out, text);
        out
    }

    #[test]
    fn strings_match_serde_json() {
        let mut every_byte = String::new();
        for b in 0u8..0x80 {
            every_byte.push(char::from(b));
        }
        for text in [
            "",
            "plain",
            "\"",
            "\\",
            "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{0}i\u{1f}j\u{7f}k",
            "12345678\"12345678",
            "1234567\u{1}",
            "été \u{fffd} 日本語 🚀 \u{2028}\u{2029}",
            every_byte.as_str(),
        ] {
            assert_eq!(escaped(text), serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn records_match_serde_json_on_the_fixture_corpus() {
        let table = ProviderTable::builtin();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/maillog");
        let mut records = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for (n, line) in text.lines().enumerate() {
                if let Some(d) = classify_line(line, &table) {
                    let n = n as u64 + 1;
                    assert_eq!(by_hand(n, &d), by_serde(n, &d), "{line}");
                    records += 1;
                }
            }
        }
        assert!(records > 200, "{records}");
        // Every status and null-ness, with hostile text in each string field.
        for line in [
            "Q0000001: to=<\"\\\u{1}\"@Ex\tample.COM>, relay=[IPv6:::1], stat=Sent (ok \"\\\" \u{7f})",
            "sm-mta[1]: Q0000002: to=<a@b>, relay=x\u{1b}[31m. [1.2.3.4], dsn=4.7.999, reply=421-4.7.999 \u{0}, stat=Deferred",
            "Q0000003: to=<a@gmail.com>, dsn=5.1.1, stat=User unknown \u{2028}",
            "Q0000004: to=, stat=queued",
            "to=<x@y>, stat=",
            "Q0000005: to=<a@b.example>, dsn=9.9.9, stat=Deferred: 451 Try later",
        ] {
            let d = classify_line(line, &table).expect(line);
            for n in [0, 1, 9, 10, u64::MAX] {
                assert_eq!(by_hand(n, &d), by_serde(n, &d), "{line}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_string_matches_serde_json(text in any::<String>()) {
            prop_assert_eq!(escaped(&text), serde_json::to_vec(&text).unwrap());
        }

        #[test]
        fn control_heavy_strings_match_serde_json(
            text in "[\\x00-\\x7f\"\\\\é日\u{1F680}]{0,80}"
        ) {
            prop_assert_eq!(escaped(&text), serde_json::to_vec(&text).unwrap());
        }

        #[test]
        fn any_delivery_line_matches_serde_json(
            queue_id in "[A-Za-z0-9]{0,20}",
            to in "\\PC{0,30}",
            relay in "\\PC{0,30}",
            dsn in "[0-9.]{0,8}",
            reply in "(\\PC|[\\x00-\\x1f\"\\\\]){0,60}",
            stat in "(Sent|Deferred|Deferred: |User unknown|queued|)(\\PC|[\\x00-\\x1f\"\\\\]){0,60}",
            line in any::<u64>(),
        ) {
            let table = ProviderTable::builtin();
            let text = format!(
                "{queue_id}: to={to}, relay={relay}, dsn={dsn}, reply={reply}, stat={stat}"
            );
            if let Some(d) = classify_line(&text, &table) {
                prop_assert_eq!(by_hand(line, &d), by_serde(line, &d));
            }
        }
    }
}

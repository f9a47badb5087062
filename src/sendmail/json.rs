//! The `parse maillog` record (`docs/contracts.md`, "`parse maillog` output") written as one
//! JSON line by hand. It is the innermost loop of the command: serde's generic serializer spent about a
//! sixth of the run escaping strings byte by byte and dispatching per field. This writer emits
//! exactly the bytes serde_json's compact serializer emits for the same record (the tests below
//! compare the two on the fixture corpus and on arbitrary strings: control characters, quotes,
//! backslashes, any Unicode), and skips over runs of plain bytes eight at a time.

use super::dsn::code_text;
use super::{Category, Delivery, Status};

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
    // From `status` to the `recipient_domain` key: enumerations and codes only, put together
    // on the stack and appended at once.
    let mut fixed = Scratch::<128>::new();
    fixed.put(b",\"status\":\"");
    fixed.put_short(&STATUS_TEXT[delivery.status as usize]);
    fixed.put(b"\",\"dsn\":");
    fixed.put_code(delivery.dsn.map(|d| (d.class, d.subject, Some(d.detail))));
    fixed.put(b",\"dsn_class\":");
    fixed.put_code(delivery.dsn.map(|d| (d.class, d.subject, None)));
    fixed.put(b",\"category\":\"");
    fixed.put_short(&CATEGORY_TEXT[delivery.category() as usize]);
    fixed.put(b"\",\"recipient_domain\":");
    out.extend_from_slice(fixed.as_bytes());
    push_optional_str(out, delivery.recipient_domain.as_deref());
    out.extend_from_slice(b",\"provider\":");
    push_optional_str(out, delivery.provider);
    out.extend_from_slice(b",\"relay\":");
    push_optional_str(out, delivery.relay);
    out.extend_from_slice(b",\"reply\":");
    push_optional_str(out, delivery.reply);
    let mut fixed = Scratch::<32>::new();
    fixed.put(b",\"reply_dsn\":");
    fixed.put_code(
        delivery
            .reply_dsn
            .map(|d| (d.class, d.subject, Some(d.detail))),
    );
    fixed.put(b"}\n");
    out.extend_from_slice(fixed.as_bytes());
}

/// A text of at most 16 bytes in a 16-byte array, so that it is copied as one fixed-size block
/// (the bytes past `len` are overwritten by what follows it).
struct Short {
    bytes: [u8; 16],
    len: usize,
}

const fn short(text: &str) -> Short {
    let text = text.as_bytes();
    let mut bytes = [0u8; 16];
    let mut i = 0;
    while i < text.len() {
        bytes[i] = text[i];
        i += 1;
    }
    Short {
        bytes,
        len: text.len(),
    }
}

/// Every status's text, in the order of [`Status`]'s variants (a test checks `as_str`).
const STATUS_TEXT: [Short; 4] = [
    short(Status::Sent.as_str()),
    short(Status::Deferred.as_str()),
    short(Status::Bounced.as_str()),
    short(Status::Other.as_str()),
];

/// Every category's text, in the order of [`Category`]'s variants (a test checks `as_str`).
const CATEGORY_TEXT: [Short; 9] = [
    short(Category::Other.as_str()),
    short(Category::Addressing.as_str()),
    short(Category::Mailbox.as_str()),
    short(Category::MailSystem.as_str()),
    short(Category::Network.as_str()),
    short(Category::Protocol.as_str()),
    short(Category::Content.as_str()),
    short(Category::Policy.as_str()),
    short(Category::Unknown.as_str()),
];

/// A stack buffer of `N` bytes for the fixed parts of a record. `put_short` and codes copy 16
/// or 12 bytes whatever their length: the part from `status` to the `recipient_domain` key
/// needs at most 106 bytes of room, the `reply_dsn` part 27 (the tests write the longest ones).
struct Scratch<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Scratch<N> {
    fn new() -> Self {
        Scratch {
            buf: [0; N],
            len: 0,
        }
    }

    fn put<const LEN: usize>(&mut self, bytes: &[u8; LEN]) {
        self.buf[self.len..self.len + LEN].copy_from_slice(bytes);
        self.len += LEN;
    }

    fn put_short(&mut self, text: &Short) {
        self.put(&text.bytes);
        self.len -= text.bytes.len() - text.len;
    }

    /// A code as a JSON string (only digits and dots, nothing to escape), or `null`.
    fn put_code(&mut self, code: Option<(u8, u16, Option<u16>)>) {
        match code {
            Some((class, subject, detail)) => {
                let (text, len) = code_text(class, subject, detail);
                self.put(b"\"");
                self.put(&text);
                self.len -= text.len() - len;
                self.put(b"\"");
            }
            None => self.put(b"null"),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[inline(always)]
fn push_optional_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
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
    let mut at = from;
    // Eight bytes at a time while none is a control character, a quote or a backslash.
    while let Some(chunk) = bytes.get(at..at + 8) {
        if needs_escape(chunk) {
            break;
        }
        at += 8;
    }
    // Fewer than eight bytes left: the string's last eight bytes (some of them already seen)
    // say at once whether the rest is plain, instead of a byte loop that mispredicts its end.
    let left = bytes.len() - at.min(bytes.len());
    if left > 0 && left < 8 {
        if let Some(last) = bytes
            .len()
            .checked_sub(8)
            .and_then(|start| bytes.get(start..))
        {
            if !needs_escape(last) {
                return bytes.len();
            }
        }
    }
    while at < bytes.len() && ESCAPE[usize::from(bytes[at])] == 0 {
        at += 1;
    }
    at
}

/// Whether any of eight bytes is a control character, a quote or a backslash (exact for the
/// word as a whole).
fn needs_escape(chunk: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    /// Whether any byte of `word` is below `n` (at most 0x80; exact for the word as a whole).
    const fn has_less(word: u64, n: u64) -> bool {
        word.wrapping_sub(ONES * n) & !word & HIGHS != 0
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    let word = u64::from_le_bytes(word);
    // Flipping bit 1 maps the quote (0x22) to 0x20 and keeps the control characters below
    // 0x20, while every other byte stays at 0x21 or above: one test finds both.
    has_less(word ^ (ONES * 0x02), 0x21) || has_less(word ^ (ONES * u64::from(b'\\')), 1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::ser::SerializeStruct;
    use serde::{Serialize, Serializer};

    use super::*;
    use crate::sendmail::{classify_line, Dsn, ProviderTable};

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

    /// The longest status, codes and category fit the stack buffers.
    #[test]
    fn longest_fixed_parts_fit() {
        let table = ProviderTable::builtin();
        let line = "Q0000001: to=<a@b>, dsn=4.999.999, reply=421 4.999.999 x, stat=Deferred: 4";
        let mut d = classify_line(line, &table).unwrap();
        assert_eq!(d.category(), Category::Unknown);
        assert_eq!(d.status, Status::Deferred);
        let mut out = Vec::new();
        push_record(&mut out, u64::MAX, &d);
        assert_eq!(out, by_serde(u64::MAX, &d));
        d.dsn = Some(Dsn::new(5, 3, 999));
        d.reply_dsn = Some(Dsn::new(5, 999, 999));
        assert_eq!(d.category(), Category::MailSystem);
        out.clear();
        push_record(&mut out, u64::MAX, &d);
        assert_eq!(out, by_serde(u64::MAX, &d));
    }

    #[test]
    fn text_tables_follow_the_variants() {
        for status in [
            Status::Sent,
            Status::Deferred,
            Status::Bounced,
            Status::Other,
        ] {
            let text = &STATUS_TEXT[status as usize];
            assert_eq!(&text.bytes[..text.len], status.as_str().as_bytes());
        }
        for category in [
            Category::Other,
            Category::Addressing,
            Category::Mailbox,
            Category::MailSystem,
            Category::Network,
            Category::Protocol,
            Category::Content,
            Category::Policy,
            Category::Unknown,
        ] {
            let text = &CATEGORY_TEXT[category as usize];
            assert_eq!(&text.bytes[..text.len], category.as_str().as_bytes());
        }
    }

    /// Eight bytes in every arrangement of plain and escaped bytes: the word test agrees with
    /// the byte table.
    #[test]
    fn needs_escape_agrees_with_the_table() {
        for byte in 0..=255u8 {
            for at in 0..8 {
                for filler in [b'a', b' ', b'!', b'#', 0x7f, 0xe9, b'"' + 1, b'\\' + 1] {
                    let mut chunk = [filler; 8];
                    chunk[at] = byte;
                    let expected = chunk.iter().any(|&b| ESCAPE[usize::from(b)] != 0);
                    assert_eq!(needs_escape(&chunk), expected, "{chunk:?}");
                }
            }
        }
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

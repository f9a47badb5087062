//! Sendmail's own messages: the delivery-status line that `logdelivery` (deliver.c) writes for
//! every recipient attempt, and the sender line of each accepted envelope. Fields borrow from
//! the input; nothing is copied. The parser never fails: it keeps what it could read.
//!
//! A delivery line is `QID: to=<a@x>,<b@y>, ctladdr=... (uid/gid), delay=..., xdelay=...,
//! mailer=..., pri=..., relay=host. [ip], dsn=..., reply=..., stat=...`. Fields are separated by
//! `, ` followed by a lower-case key and `=`; `stat=` is always last and runs to the end of the
//! line (its text may contain anything the remote server said); `reply=` (sendmail 8.17) runs
//! up to `, stat=`.

/// What a sendmail message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendmailMessage<'a> {
    Delivery(DeliveryLine<'a>),
    Sender(SenderLine<'a>),
    /// Anything else sendmail logs (`SYSERR`, `ruleset=`, `DSN:`, ...) or another program's text.
    Other,
}

/// `relay=host. [ip]`, `relay=[ip]`, `relay=[IPv6:::1]`, `relay=user@host [ip] (may be forged)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay<'a> {
    /// The host name without its trailing dot, when one is logged.
    pub host: Option<&'a str>,
    /// The address with its brackets, `[142.250.31.27]` or `[IPv6:2001:db8::1]`.
    pub bracketed_addr: Option<&'a str>,
    /// The field as logged.
    pub raw: &'a str,
}

impl<'a> Relay<'a> {
    pub fn parse(raw: &'a str) -> Relay<'a> {
        let text = trim(raw);
        // Byte searches for ASCII characters: the offsets are character boundaries.
        let bracketed = |from: &'a str| -> Option<&'a str> {
            let open = find_byte(from.as_bytes(), b'[')?;
            let close = find_byte_from(from.as_bytes(), open, b']')?;
            Some(&from[open..=close])
        };
        if text.starts_with('[') {
            return Relay {
                host: None,
                bracketed_addr: bracketed(text),
                raw,
            };
        }
        let (host, rest) = match find_byte(text.as_bytes(), b' ') {
            Some(space) => (&text[..space], &text[space + 1..]),
            None => (text, ""),
        };
        let host = host.trim_end_matches('.');
        Relay {
            host: (!host.is_empty()).then_some(host),
            bracketed_addr: bracketed(rest),
            raw,
        }
    }

    /// The host name, or the bracketed address when there is no name (the contract's `relay`).
    pub fn display(&self) -> Option<&'a str> {
        self.host.or(self.bracketed_addr)
    }
}

/// A delivery-status line: one attempt to deliver to the recipients in `to=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryLine<'a> {
    pub queue_id: Option<&'a str>,
    /// The recipient list as logged (comma-separated, `[more]` removed).
    pub to: &'a str,
    /// Sendmail split a long recipient list over several lines (`to=... [more]`).
    pub more_recipients: bool,
    pub ctladdr: Option<&'a str>,
    pub delay: Option<&'a str>,
    pub xdelay: Option<&'a str>,
    pub mailer: Option<&'a str>,
    pub pri: Option<&'a str>,
    pub relay: Option<Relay<'a>>,
    pub dsn: Option<&'a str>,
    /// The remote server's reply (sendmail 8.17 `reply=`).
    pub reply: Option<&'a str>,
    pub stat: Option<&'a str>,
}

/// The sender line: `QID: from=<a@x>, size=N, class=0, nrcpts=N, msgid=<...>, proto=ESMTP,
/// daemon=MTA, relay=host [ip]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderLine<'a> {
    pub queue_id: Option<&'a str>,
    pub from: &'a str,
    pub size: Option<u64>,
    pub class: Option<&'a str>,
    pub nrcpts: Option<u32>,
    pub msgid: Option<&'a str>,
    pub proto: Option<&'a str>,
    pub daemon: Option<&'a str>,
    pub relay: Option<Relay<'a>>,
}

/// Classifies and parses one sendmail message (the syslog message, prefix already removed).
pub fn parse_message(message: &str) -> SendmailMessage<'_> {
    let (queue_id, body) = split_queue_id(message);
    if body.starts_with("to=") {
        SendmailMessage::Delivery(parse_delivery_body(queue_id, body))
    } else if body.starts_with("from=") {
        SendmailMessage::Sender(parse_sender_body(queue_id, body))
    } else {
        SendmailMessage::Other
    }
}

/// The delivery line a message is, if it is one: `parse_message`'s `Delivery`, without the
/// enum around it (the delivery line is large, and the command's innermost loop moves it).
pub(crate) fn parse_delivery(message: &str) -> Option<DeliveryLine<'_>> {
    let (queue_id, body) = split_queue_id(message);
    body.starts_with("to=")
        .then(|| parse_delivery_body(queue_id, body))
}

/// `5ASKE3aB000812: rest` -> (Some(id), rest); a message without a queue id is all body.
fn split_queue_id(message: &str) -> (Option<&str>, &str) {
    let bytes = message.as_bytes();
    let len = alphanumeric_prefix(bytes, 33);
    if (4..=32).contains(&len) && bytes.get(len) == Some(&b':') && bytes.get(len + 1) == Some(&b' ')
    {
        (Some(&message[..len]), &message[len + 2..])
    } else {
        (None, message)
    }
}

/// The delivery-status fields, walked as [`Fields`] walks them (the tests hold the two to the
/// same answers) but without the iterator: each key is read as one word and matched against
/// the words of the known keys, which costs far less than comparing strings field by field on
/// the command's innermost path.
fn parse_delivery_body<'a>(queue_id: Option<&'a str>, body: &'a str) -> DeliveryLine<'a> {
    let mut line = DeliveryLine {
        queue_id,
        ..DeliveryLine::default()
    };
    let bytes = body.as_bytes();
    let Some(mut key) = key_at_start(bytes) else {
        return line;
    };
    let mut key_at = 0;
    loop {
        let value_at = key_at + key.len + 1;
        let tail = &bytes[value_at..];
        let mut next_key = None;
        let value_len = match key.word {
            STAT => tail.len(),
            REPLY => find_stat_separator(tail).unwrap_or(tail.len()),
            _ => match next_separator(tail) {
                Some((at, found)) => {
                    next_key = Some(found);
                    at
                }
                None => tail.len(),
            },
        };
        let value = &body[value_at..value_at + value_len];
        match key.word {
            TO => {
                let (to, more) = strip_more(value);
                line.to = to;
                line.more_recipients = more;
            }
            CTLADDR => line.ctladdr = Some(value),
            DELAY => line.delay = Some(value),
            XDELAY => line.xdelay = Some(value),
            MAILER => line.mailer = Some(value),
            PRI => line.pri = Some(value),
            RELAY => line.relay = Some(Relay::parse(value)),
            DSN => line.dsn = Some(value),
            REPLY => line.reply = Some(value),
            STAT => line.stat = Some(value),
            _ => {}
        }
        // The next key follows the `, ` after the value.
        key_at = value_at + value_len + 2;
        key = match next_key {
            Some(found) => found,
            None => match bytes.get(key_at..).and_then(key_at_start) {
                Some(found) => found,
                None => return line,
            },
        };
    }
}

/// The key of `len` bytes at `bytes[at..]`, when it is at most eight bytes long, as a
/// little-endian word, zero-padded (keys hold no zero byte, so the word names the key); 0 for
/// a longer key, which is no key sendmail logs.
#[inline(always)]
fn key_word(bytes: &[u8], at: usize, len: usize) -> u64 {
    if len > 8 {
        return 0;
    }
    let mut word = [0u8; 8];
    match bytes.get(at..at + 8) {
        // Eight bytes at once (the key and what follows it), the rest masked off.
        Some(chunk) => word.copy_from_slice(chunk),
        None => {
            for (to, from) in word.iter_mut().zip(&bytes[at..at + len]) {
                *to = *from;
            }
        }
    }
    let word = u64::from_le_bytes(word);
    match len {
        8 => word,
        _ => word & ((1u64 << (8 * len)) - 1),
    }
}

/// [`key_word`] of a key known at compile time.
const fn word_of(key: &[u8]) -> u64 {
    let mut word = 0u64;
    let mut i = 0;
    while i < key.len() {
        word |= (key[i] as u64) << (8 * i);
        i += 1;
    }
    word
}

const TO: u64 = word_of(b"to");
const CTLADDR: u64 = word_of(b"ctladdr");
const DELAY: u64 = word_of(b"delay");
const XDELAY: u64 = word_of(b"xdelay");
const MAILER: u64 = word_of(b"mailer");
const PRI: u64 = word_of(b"pri");
const RELAY: u64 = word_of(b"relay");
const DSN: u64 = word_of(b"dsn");
const REPLY: u64 = word_of(b"reply");
const STAT: u64 = word_of(b"stat");

/// The number of ASCII letters and digits `bytes` opens with, counting up to `max`. A word at a
/// time: queue ids are 14 to 18 bytes, and a byte loop mispredicts its end on every line.
fn alphanumeric_prefix(bytes: &[u8], max: usize) -> usize {
    let mut len = 0;
    while len < max {
        let Some(chunk) = bytes.get(len..len + 8) else {
            break;
        };
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let others = non_alphanumeric_bytes(u64::from_le_bytes(word));
        if others != 0 {
            return (len + others.trailing_zeros() as usize / 8).min(max);
        }
        len += 8;
    }
    while len < max && len < bytes.len() && bytes[len].is_ascii_alphanumeric() {
        len += 1;
    }
    len.min(max)
}

/// The high bit of each byte of `word` that is not an ASCII letter or digit, all others clear.
/// Exact per byte, as [`non_key_bytes`].
const fn non_alphanumeric_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    /// The high bit of each byte whose low seven bits are at least `from`.
    const fn at_least(low: u64, from: u8) -> u64 {
        (low + ONES * (0x80 - from as u64)) & HIGHS
    }
    let low = word & !HIGHS;
    let digit = at_least(low, b'0') & !at_least(low, b'9' + 1);
    let upper = at_least(low, b'A') & !at_least(low, b'Z' + 1);
    let lower = at_least(low, b'a') & !at_least(low, b'z' + 1);
    !((digit | upper | lower) & !word) & HIGHS
}

fn parse_sender_body<'a>(queue_id: Option<&'a str>, body: &'a str) -> SenderLine<'a> {
    let mut line = SenderLine {
        queue_id,
        ..SenderLine::default()
    };
    for (key, value) in Fields::new(body) {
        match key {
            "from" => line.from = value,
            "size" => line.size = value.parse().ok(),
            "class" => line.class = Some(value),
            "nrcpts" => line.nrcpts = value.parse().ok(),
            "msgid" => line.msgid = Some(value),
            "proto" => line.proto = Some(value),
            "daemon" => line.daemon = Some(value),
            "relay" => line.relay = Some(Relay::parse(value)),
            _ => {}
        }
    }
    line
}

/// `<a>,<b>, [more]` -> (`<a>,<b>`, true).
fn strip_more(value: &str) -> (&str, bool) {
    match value.strip_suffix(" [more]") {
        Some(rest) => (rest.trim_end_matches(','), true),
        None => (value, false),
    }
}

/// Iterates over `key=value` fields separated by `, key=`; `stat=` takes the rest of the line
/// and `reply=` runs to the first `, stat=`.
struct Fields<'a> {
    rest: &'a str,
    /// The length of the key that opens `rest`, when the separator search already measured it.
    key_len: Option<usize>,
}

impl<'a> Fields<'a> {
    fn new(body: &'a str) -> Self {
        Fields {
            rest: body,
            key_len: None,
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        let key_len = match self.key_len.take() {
            Some(len) => len,
            None => key_length(rest.as_bytes())?,
        };
        let key = &rest[..key_len];
        let value_start = key_len + 1;
        let tail = &rest[value_start..];
        let value_len = match key {
            "stat" => tail.len(),
            "reply" => find_stat_separator(tail.as_bytes()).unwrap_or(tail.len()),
            _ => match next_separator(tail.as_bytes()) {
                Some((at, next_key)) => {
                    self.key_len = Some(next_key.len);
                    at
                }
                None => tail.len(),
            },
        };
        let value = &tail[..value_len];
        // Skip the `, ` separator (or reach the end).
        self.rest = tail.get(value_len + 2..).unwrap_or("");
        Some((key, value))
    }
}

/// Bytes allowed in a key: `a`-`z` and `_`.
const KEY_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = b'a';
    while b <= b'z' {
        table[b as usize] = true;
        b += 1;
    }
    table[b'_' as usize] = true;
    table
};

/// Length of a `[a-z_]+` key (at most 24 bytes) followed by `=`, or None.
#[inline(always)]
fn key_length(bytes: &[u8]) -> Option<usize> {
    key_at_start(bytes).map(|key| key.len)
}

/// A key found in the text: its length, and its bytes as a word (see [`key_word`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    len: usize,
    word: u64,
}

/// The `[a-z_]+` key (at most 24 bytes) followed by `=` that opens `bytes`, or None.
#[inline(always)]
fn key_at_start(bytes: &[u8]) -> Option<Key> {
    // Every key sendmail logs is shorter than eight bytes: its end is found in one word, which
    // also holds the key.
    if let Some(chunk) = bytes.get(..8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let others = non_key_bytes(word);
        if others != 0 {
            // 0 to 7: the key's bytes are the word's low `len` bytes.
            let len = others.trailing_zeros() as usize / 8;
            let word = word & ((1u64 << (8 * len)) - 1);
            return (len > 0 && bytes[len] == b'=').then_some(Key { len, word });
        }
    }
    let mut len = 0;
    while len < 24 && len < bytes.len() && KEY_BYTE[usize::from(bytes[len])] {
        len += 1;
    }
    (len > 0 && bytes.get(len) == Some(&b'=')).then(|| Key {
        len,
        word: key_word(bytes, 0, len),
    })
}

/// The high bit of each byte of `word` that is not a key byte (`a`-`z`, `_`), all others
/// clear. Exact per byte: no sum below carries from one byte into the next.
const fn non_key_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    let low = word & !HIGHS; // each byte's low seven bits
    let at_least_a = (low + ONES * (0x80 - b'a' as u64)) & HIGHS;
    let above_z = (low + ONES * (0x80 - b'{' as u64)) & HIGHS;
    let not_underscore = ((low ^ (ONES * b'_' as u64)) + ONES * 0x7f) & HIGHS;
    let key = ((at_least_a & !above_z) | !not_underscore) & !word & HIGHS;
    !key & HIGHS
}

/// The offset of the first `, stat=` in `bytes` (where a `reply=` value ends).
fn find_stat_separator(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = find_comma(bytes, from) {
        if bytes.get(at..at + 7) == Some(b", stat=") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Offset of the next `, key=` in `text`, and the length of that key.
#[inline(always)]
fn next_separator(bytes: &[u8]) -> Option<(usize, Key)> {
    let mut from = 0;
    while let Some(at) = find_comma(bytes, from) {
        if bytes.get(at + 1) == Some(&b' ') {
            if let Some(key) = key_at_start(&bytes[at + 2..]) {
                return Some((at, key));
            }
        }
        from = at + 1;
    }
    None
}

/// The first `,` at or after `from`.
#[inline(always)]
fn find_comma(bytes: &[u8], from: usize) -> Option<usize> {
    find_byte_from(bytes, from, b',')
}

/// The first `needle` at or after `from`. Eight bytes at a time without a call: the fields and
/// names searched on the parse path are mostly shorter than a vector search needs to pay off.
#[inline(always)]
pub(crate) fn find_byte_from(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let matches = u64::from_le_bytes(word) ^ (ONES * u64::from(needle));
        // The lowest set bit marks the first zero byte exactly (borrows only run upwards).
        let zeros = matches.wrapping_sub(ONES) & !matches & HIGHS;
        if zeros != 0 {
            return Some(at + zeros.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&b| b == needle)
        .map(|offset| at + offset)
}

/// The first `needle` in `bytes`.
#[inline(always)]
pub(crate) fn find_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    find_byte_from(bytes, 0, needle)
}

/// The last `needle` in `bytes`; short texts (names, domains) are searched from the end a byte
/// at a time.
#[inline(always)]
pub(crate) fn rfind_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    bytes.iter().rposition(|&b| b == needle)
}

/// `str::trim`, with a fast path for the usual field that starts and ends with a visible ASCII
/// character (nothing to trim; `trim` would decode characters at both ends to find that out).
pub(crate) fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// The recipients of a `to=` list: split on commas outside `<...>` and quotes.
pub fn recipients(to: &str) -> impl Iterator<Item = &str> {
    let mut rest = to;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut depth = 0u32;
        let mut quoted = false;
        let mut end = rest.len();
        for (i, b) in rest.bytes().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b'<' if !quoted => depth += 1,
                b'>' if !quoted => depth = depth.saturating_sub(1),
                b',' if !quoted && depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let item = trim(&rest[..end]);
        rest = rest.get(end + 1..).unwrap_or("");
        Some(item)
    })
    .filter(|item| !item.is_empty())
}

/// The domain of an address such as `<someone@Gmail.com>` or `someone@gmail.com.`, as logged
/// (not lower-cased), without brackets or a trailing dot.
pub fn address_domain(address: &str) -> Option<&str> {
    let inner = trim(address);
    let inner = inner.strip_prefix('<').unwrap_or(inner);
    // Byte searches for ASCII characters: the offsets are character boundaries.
    let inner = match find_byte(inner.as_bytes(), b'>') {
        Some(close) => &inner[..close],
        None => inner,
    };
    let at = rfind_byte(inner.as_bytes(), b'@')?;
    let domain = inner[at + 1..].trim_end_matches('.');
    (!domain.is_empty()).then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(message: &str) -> DeliveryLine<'_> {
        match parse_message(message) {
            SendmailMessage::Delivery(d) => d,
            other => panic!("not a delivery line: {other:?}"),
        }
    }

    #[test]
    fn full_delivery_line() {
        let d = delivery(
            "5ASKE3aB000812: to=<someone@gmail.com>, ctladdr=<me@example.org> (1000/1000), delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=121458, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 unusual rate, of unsolicited mail, x=y",
        );
        assert_eq!(d.queue_id, Some("5ASKE3aB000812"));
        assert_eq!(d.to, "<someone@gmail.com>");
        assert_eq!(d.ctladdr, Some("<me@example.org> (1000/1000)"));
        assert_eq!(d.delay, Some("00:00:02"));
        assert_eq!(d.mailer, Some("esmtp"));
        assert_eq!(d.pri, Some("121458"));
        let relay = d.relay.unwrap();
        assert_eq!(relay.host, Some("gmail-smtp-in.l.google.com"));
        assert_eq!(relay.bracketed_addr, Some("[142.250.31.27]"));
        assert_eq!(d.dsn, Some("4.7.28"));
        assert_eq!(
            d.stat,
            Some("Deferred: 421-4.7.28 unusual rate, of unsolicited mail, x=y")
        );
    }

    #[test]
    fn reply_field_runs_to_stat() {
        let d = delivery(
            "QID1234: to=<a@b.example>, delay=00:00:01, mailer=esmtp, pri=1, relay=mx.b.example. [192.0.2.1], dsn=5.1.1, reply=550 5.1.1 <a@b.example>... User unknown, sorry, stat=User unknown",
        );
        assert_eq!(
            d.reply,
            Some("550 5.1.1 <a@b.example>... User unknown, sorry")
        );
        assert_eq!(d.stat, Some("User unknown"));
    }

    #[test]
    fn several_recipients_and_more() {
        let d =
            delivery("QID1234: to=<a@x.example>,<b@y.example>, [more], delay=00:00:00, stat=Sent");
        assert!(d.more_recipients);
        assert_eq!(
            recipients(d.to).collect::<Vec<_>>(),
            ["<a@x.example>", "<b@y.example>"]
        );
        let list = "\"a,b\"@x.example,<c,d@y.example>, e@z.example";
        assert_eq!(
            recipients(list).collect::<Vec<_>>(),
            ["\"a,b\"@x.example", "<c,d@y.example>", "e@z.example"]
        );
    }

    #[test]
    fn relays() {
        let r = Relay::parse("[127.0.0.1]");
        assert_eq!((r.host, r.display()), (None, Some("[127.0.0.1]")));
        let r = Relay::parse("[IPv6:::1]");
        assert_eq!(r.display(), Some("[IPv6:::1]"));
        let r = Relay::parse("mx.example. [IPv6:2001:db8::25]");
        assert_eq!(r.host, Some("mx.example"));
        assert_eq!(r.bracketed_addr, Some("[IPv6:2001:db8::25]"));
        let r = Relay::parse("localhost [127.0.0.1] (may be forged)");
        assert_eq!(r.host, Some("localhost"));
        assert_eq!(r.bracketed_addr, Some("[127.0.0.1]"));
        let r = Relay::parse("");
        assert_eq!(r.display(), None);
        let r = Relay::parse("[unclosed");
        assert_eq!(r.display(), None);
    }

    #[test]
    fn sender_line() {
        match parse_message("5ASKE3aB000812: from=<me@example.org>, size=1234, class=0, nrcpts=2, msgid=<x@y>, proto=ESMTPSA, daemon=MTA, relay=localhost [127.0.0.1]") {
            SendmailMessage::Sender(s) => {
                assert_eq!(s.from, "<me@example.org>");
                assert_eq!(s.size, Some(1234));
                assert_eq!(s.nrcpts, Some(2));
                assert_eq!(s.msgid, Some("<x@y>"));
                assert_eq!(s.proto, Some("ESMTPSA"));
                assert_eq!(s.daemon, Some("MTA"));
                assert_eq!(s.relay.unwrap().host, Some("localhost"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_messages() {
        for m in [
            "",
            "NOQUEUE: connect from localhost [127.0.0.1]",
            "5ASKE3aB000812: 5ASKE3aC000813: DSN: User unknown",
            "ruleset=check_rcpt, arg1=<a@b>, relay=x, reject=550 5.7.1 denied",
            "starting daemon (8.17.1.9): SMTP+queueing@00:25:00",
        ] {
            assert_eq!(parse_message(m), SendmailMessage::Other, "{m}");
        }
    }

    proptest::proptest! {
        #[test]
        fn byte_searches_agree_with_memchr(
            text in proptest::collection::vec(
                proptest::sample::select(b"ab.@ [],".to_vec()),
                0..40,
            ),
            needle in proptest::sample::select(b".@ [],x".to_vec()),
        ) {
            proptest::prop_assert_eq!(find_byte(&text, needle), memchr::memchr(needle, &text));
            proptest::prop_assert_eq!(rfind_byte(&text, needle), memchr::memrchr(needle, &text));
        }

        #[test]
        fn find_comma_finds_the_first_comma(
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            from in 0usize..45,
        ) {
            let expected = text
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b','))
                .map(|offset| from + offset);
            proptest::prop_assert_eq!(find_comma(&text, from), expected);
        }
    }

    /// The definition `parse_delivery_body` implements: every field as [`Fields`] yields it.
    fn delivery_by_fields<'a>(queue_id: Option<&'a str>, body: &'a str) -> DeliveryLine<'a> {
        let mut line = DeliveryLine {
            queue_id,
            ..DeliveryLine::default()
        };
        for (key, value) in Fields::new(body) {
            match key {
                "to" => {
                    let (to, more) = strip_more(value);
                    line.to = to;
                    line.more_recipients = more;
                }
                "ctladdr" => line.ctladdr = Some(value),
                "delay" => line.delay = Some(value),
                "xdelay" => line.xdelay = Some(value),
                "mailer" => line.mailer = Some(value),
                "pri" => line.pri = Some(value),
                "relay" => line.relay = Some(Relay::parse(value)),
                "dsn" => line.dsn = Some(value),
                "reply" => line.reply = Some(value),
                "stat" => line.stat = Some(value),
                _ => {}
            }
        }
        line
    }

    /// Bodies made of sendmail's keys, near misses and long keys, with separators, values that
    /// hold commas, `, stat=` and `[more]`, and arbitrary text.
    fn body_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            proptest::sample::select(vec![
                "to",
                "ctladdr",
                "delay",
                "xdelay",
                "mailer",
                "pri",
                "relay",
                "dsn",
                "reply",
                "stat",
                "st",
                "stats",
                "tox",
                "relays",
                "dsn_",
                "a",
                "abcdefgh",
                "abcdefghi",
                "_",
                "xxxxxxxxxxxxxxxxxxxxxxxx",
                "xxxxxxxxxxxxxxxxxxxxxxxxx",
                "Stat",
                "",
            ])
            .prop_map(str::to_string),
            "[a-z_]{1,10}",
        ];
        let value = prop_oneof![
            "[a-z<>@. \\[\\]0-9]{0,12}",
            Just(", stat=".to_string()),
            Just(",".to_string()),
            Just(", ".to_string()),
            Just(" [more]".to_string()),
            Just(",, [more]".to_string()),
            "\\PC{0,6}",
        ];
        let field = (key, prop::collection::vec(value, 0..3), any::<bool>());
        (prop::collection::vec(field, 0..8), any::<bool>()).prop_map(|(fields, to_first)| {
            let mut body = String::new();
            if to_first {
                body.push_str("to=");
            }
            for (i, (key, values, comma)) in fields.iter().enumerate() {
                if i > 0 || to_first {
                    body.push_str(if *comma { ", " } else { "," });
                }
                body.push_str(key);
                body.push('=');
                body.extend(values.iter().map(String::as_str));
            }
            body
        })
    }

    proptest::proptest! {
        #[test]
        fn delivery_fields_agree_with_the_field_iterator(body in body_strategy()) {
            proptest::prop_assert_eq!(
                parse_delivery_body(Some("QID"), &body),
                delivery_by_fields(Some("QID"), &body)
            );
        }

        #[test]
        fn delivery_fields_agree_on_any_text(body in "\\PC{0,60}") {
            proptest::prop_assert_eq!(
                parse_delivery_body(None, &body),
                delivery_by_fields(None, &body)
            );
        }

        #[test]
        fn alphanumeric_prefix_agrees_with_its_definition(
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            alnum in "[A-Za-z0-9]{0,40}",
            max in 0usize..40,
        ) {
            let mut bytes = alnum.into_bytes();
            bytes.extend(text);
            let expected = bytes
                .iter()
                .take(max)
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            proptest::prop_assert_eq!(alphanumeric_prefix(&bytes, max), expected);
        }
    }

    #[test]
    fn delivery_fields_agree_on_the_fixture_corpus() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/maillog");
        let mut bodies = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines() {
                let message = crate::sendmail::parse_syslog(line).message;
                let expected = match parse_message(message) {
                    SendmailMessage::Delivery(delivery) => Some(delivery),
                    _ => None,
                };
                assert_eq!(parse_delivery(message), expected, "{line}");
                let (queue_id, body) = split_queue_id(message);
                if let Some(at) = body.find("to=") {
                    let body = &body[at..];
                    assert_eq!(
                        parse_delivery_body(queue_id, body),
                        delivery_by_fields(queue_id, body),
                        "{line}"
                    );
                    bodies += 1;
                }
            }
        }
        assert!(bodies > 200, "{bodies}");
    }

    #[test]
    fn alphanumeric_bytes_in_every_position() {
        for byte in 0..=255u8 {
            for at in 0..12 {
                let mut text = vec![b'Q'; 12];
                text[at] = byte;
                let expected = if byte.is_ascii_alphanumeric() { 12 } else { at };
                assert_eq!(alphanumeric_prefix(&text, 33), expected, "{byte} {at}");
            }
        }
    }

    /// The definitions the word-at-a-time scanners implement.
    fn key_length_reference(bytes: &[u8]) -> Option<usize> {
        let len = bytes
            .iter()
            .take(24)
            .take_while(|&&b| b.is_ascii_lowercase() || b == b'_')
            .count();
        (len > 0 && bytes.get(len) == Some(&b'=')).then_some(len)
    }

    proptest::proptest! {
        #[test]
        fn key_length_agrees_with_its_definition(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(b"az_=`{^@ ,".to_vec()),
                    b'a'..=b'z',
                ],
                0..32,
            ),
        ) {
            proptest::prop_assert_eq!(key_length(&text), key_length_reference(&text));
            let word = key_length_reference(&text).map(|len| {
                let mut word = [0u8; 8];
                if len <= 8 {
                    word[..len].copy_from_slice(&text[..len]);
                }
                u64::from_le_bytes(word)
            });
            proptest::prop_assert_eq!(key_at_start(&text).map(|key| key.word), word);
        }

        #[test]
        fn stat_separator_is_the_first_one(text in "[a-z ,=]{0,40}") {
            proptest::prop_assert_eq!(find_stat_separator(text.as_bytes()), text.find(", stat="));
        }
    }

    #[test]
    fn key_length_on_every_byte_in_every_position() {
        for len in 0..28 {
            for at in 0..=len {
                for byte in 0..=255u8 {
                    let mut text = vec![b'k'; len];
                    if at < len {
                        text[at] = byte;
                    }
                    text.push(b'=');
                    assert_eq!(
                        key_length(&text),
                        key_length_reference(&text),
                        "{len} {at} {byte}"
                    );
                }
            }
        }
    }

    #[test]
    fn find_comma_in_every_position() {
        for len in 0..20 {
            for comma in 0..len {
                let mut text = vec![b'a'; len];
                text[comma] = b',';
                if comma + 2 < len {
                    text[comma + 2] = b',';
                }
                for from in 0..=len {
                    let expected = (from <= comma)
                        .then_some(comma)
                        .or_else(|| (comma + 2 < len && from <= comma + 2).then_some(comma + 2));
                    assert_eq!(find_comma(&text, from), expected, "{len} {comma} {from}");
                }
            }
        }
    }

    #[test]
    fn domains() {
        assert_eq!(address_domain("<someone@Gmail.com>"), Some("Gmail.com"));
        assert_eq!(address_domain("someone@gmail.com."), Some("gmail.com"));
        assert_eq!(address_domain("root"), None);
        assert_eq!(address_domain("<a@>"), None);
        assert_eq!(address_domain("\"|/usr/bin/procmail\""), None);
    }
}

//! Enhanced mail system status codes (RFC 3463): parsing, the subject categories of the
//! `parse maillog` contract, a human meaning for every subject and for the detail codes that
//! occur in practice, and the runbook's reading of them (4.4 connectivity, 4.7 policy, ...).

use std::fmt;

use serde::{Serialize, Serializer};

/// An enhanced status code `class.subject.detail` such as `4.7.28`.
///
/// RFC 3463 allows a class of 2, 4 or 5, a subject of one to three digits and a detail of one
/// to three digits; anything else is not a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dsn {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

/// The first two parts of a code (`4.7`), the unit in which the runbook reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DsnClass {
    pub class: u8,
    pub subject: u16,
}

/// The status class: the first digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 2: success.
    Success,
    /// 4: persistent transient failure; sendmail defers and retries.
    Transient,
    /// 5: permanent failure; sendmail bounces.
    Permanent,
}

/// The subject of a code (RFC 3463 section 3), as named by the `parse maillog` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// x.0: other or undefined status.
    Other,
    /// x.1: addressing status.
    Addressing,
    /// x.2: mailbox status.
    Mailbox,
    /// x.3: mail system status.
    MailSystem,
    /// x.4: network and routing status.
    Network,
    /// x.5: mail delivery protocol status.
    Protocol,
    /// x.6: message content or media status.
    Content,
    /// x.7: security or policy status.
    Policy,
    /// No code, or a subject RFC 3463 does not define.
    Unknown,
}

impl Category {
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Other => "other",
            Category::Addressing => "addressing",
            Category::Mailbox => "mailbox",
            Category::MailSystem => "mail-system",
            Category::Network => "network",
            Category::Protocol => "protocol",
            Category::Content => "content",
            Category::Policy => "policy",
            Category::Unknown => "unknown",
        }
    }

    /// The category of an optional code: `Unknown` without one.
    pub fn of(dsn: Option<Dsn>) -> Category {
        dsn.map_or(Category::Unknown, Dsn::category)
    }
}

impl Dsn {
    pub const fn new(class: u8, subject: u16, detail: u16) -> Dsn {
        Dsn {
            class,
            subject,
            detail,
        }
    }

    /// Parses exactly a code (`4.7.28`), nothing before or after it.
    pub fn parse(text: &str) -> Option<Dsn> {
        let (dsn, used) = Self::parse_prefix(text)?;
        (used == text.len()).then_some(dsn)
    }

    /// Parses a code at the start of `text` and returns it with the number of bytes it used.
    /// The code must end the text or be followed by a byte that is not a digit or a dot.
    pub fn parse_prefix(text: &str) -> Option<(Dsn, usize)> {
        let bytes = text.as_bytes();
        let class = match bytes.first()? {
            b'2' => 2,
            b'4' => 4,
            b'5' => 5,
            _ => return None,
        };
        if bytes.get(1) != Some(&b'.') {
            return None;
        }
        let (subject, subject_len) = digits(&bytes[2..])?;
        let detail_at = 2 + subject_len;
        if bytes.get(detail_at) != Some(&b'.') {
            return None;
        }
        let (detail, detail_len) = digits(&bytes[detail_at + 1..])?;
        let end = detail_at + 1 + detail_len;
        match bytes.get(end) {
            Some(b) if b.is_ascii_digit() || *b == b'.' => None,
            _ => Some((Dsn::new(class, subject, detail), end)),
        }
    }

    pub fn class(self) -> DsnClass {
        DsnClass {
            class: self.class,
            subject: self.subject,
        }
    }

    pub fn severity(self) -> Severity {
        match self.class {
            2 => Severity::Success,
            4 => Severity::Transient,
            _ => Severity::Permanent,
        }
    }

    pub fn category(self) -> Category {
        category_of_subject(self.subject)
    }

    /// Whether the code says nothing beyond its class and subject (`x.y.0`), or nothing beyond
    /// its class (`x.0.0`): a more specific code from elsewhere should win over it.
    pub fn is_generic(self) -> bool {
        self.detail == 0
    }

    /// A short human meaning: the detail's when it is known, else the subject's.
    pub fn meaning(self) -> &'static str {
        detail_meaning(self).unwrap_or_else(|| self.class().meaning())
    }

    /// How the runbook reads the code: what it usually means for Cabalmail's operator.
    pub fn reading(self) -> &'static str {
        runbook_reading(self)
    }
}

impl DsnClass {
    pub fn category(self) -> Category {
        category_of_subject(self.subject)
    }

    /// The meaning of the subject (RFC 3463 section 3).
    pub fn meaning(self) -> &'static str {
        match self.subject {
            0 => "other or undefined status",
            1 => "addressing status",
            2 => "mailbox status",
            3 => "mail system status",
            4 => "network and routing status",
            5 => "mail delivery protocol status",
            6 => "message content or media status",
            7 => "security or policy status",
            _ => "undefined subject",
        }
    }
}

fn category_of_subject(subject: u16) -> Category {
    match subject {
        0 => Category::Other,
        1 => Category::Addressing,
        2 => Category::Mailbox,
        3 => Category::MailSystem,
        4 => Category::Network,
        5 => Category::Protocol,
        6 => Category::Content,
        7 => Category::Policy,
        _ => Category::Unknown,
    }
}

/// One to three ASCII digits at the start of `bytes`.
fn digits(bytes: &[u8]) -> Option<(u16, usize)> {
    let len = bytes
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if len == 0 || len > 3 {
        return None;
    }
    let value = bytes[..len]
        .iter()
        .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    Some((value, len))
}

/// The details of RFC 3463 (and the registry's later additions that providers use), by
/// subject and detail; the class only changes permanence, not meaning.
fn detail_meaning(dsn: Dsn) -> Option<&'static str> {
    Some(match (dsn.subject, dsn.detail) {
        (0, 0) => "other undefined status",
        (1, 0) => "other address status",
        (1, 1) => "bad destination mailbox address (user unknown)",
        (1, 2) => "bad destination system address (host unknown)",
        (1, 3) => "bad destination mailbox address syntax",
        (1, 4) => "destination mailbox address ambiguous",
        (1, 5) => "destination address valid",
        (1, 6) => "destination mailbox has moved, no forwarding address",
        (1, 7) => "bad sender's mailbox address syntax",
        (1, 8) => "bad sender's system address",
        (1, 10) => "recipient address has null MX",
        (2, 0) => "other or undefined mailbox status",
        (2, 1) => "mailbox disabled, not accepting messages",
        (2, 2) => "mailbox full",
        (2, 3) => "message length exceeds administrative limit",
        (2, 4) => "mailing list expansion problem",
        (3, 0) => "other or undefined mail system status",
        (3, 1) => "mail system full",
        (3, 2) => "system not accepting network messages",
        (3, 3) => "system not capable of selected features",
        (3, 4) => "message too big for system",
        (3, 5) => "system incorrectly configured",
        (4, 0) => "other or undefined network or routing status",
        (4, 1) => "no answer from host (connection refused or timed out)",
        (4, 2) => "bad connection (dropped or reset)",
        (4, 3) => "directory server failure (DNS lookup failed)",
        (4, 4) => "unable to route (no MX or A record)",
        (4, 5) => "mail system congestion",
        (4, 6) => "routing loop detected",
        (4, 7) => "delivery time expired",
        (5, 0) => "other or undefined protocol status",
        (5, 1) => "invalid command",
        (5, 2) => "syntax error",
        (5, 3) => "too many recipients",
        (5, 4) => "invalid command arguments",
        (5, 5) => "wrong protocol version",
        (5, 6) => "authentication exchange line is too long",
        (6, 0) => "other or undefined media error",
        (6, 1) => "media not supported",
        (6, 2) => "conversion required and prohibited",
        (6, 3) => "conversion required but not supported",
        (6, 4) => "conversion with loss performed",
        (6, 5) => "conversion failed",
        (6, 6) => "message content not available",
        (6, 7) => "non-ASCII addresses not permitted for that sender/recipient",
        (7, 0) => "other or undefined security status",
        (7, 1) => "delivery not authorized, message refused (often a blocklist or greylisting)",
        (7, 2) => "mailing list expansion prohibited",
        (7, 3) => "security conversion required but not possible",
        (7, 4) => "security features not supported",
        (7, 5) => "cryptographic failure",
        (7, 6) => "cryptographic algorithm not supported",
        (7, 7) => "message integrity failure",
        (7, 8) => "authentication credentials invalid",
        (7, 9) => "authentication mechanism is too weak",
        (7, 10) => "encryption needed",
        (7, 11) => "encryption required for requested authentication mechanism",
        (7, 12) => "a password transition is needed",
        (7, 13) => "user account disabled",
        (7, 14) => "trust relationship required",
        (7, 15) => "priority level is too low",
        (7, 16) => "message is too big for the specified priority",
        (7, 17) => "mailbox owner has changed",
        (7, 18) => "domain owner has changed",
        (7, 19) => "RRVS test cannot be completed",
        (7, 20) => "no passing DKIM signature found",
        (7, 21) => "no acceptable DKIM signature found",
        (7, 22) => "no valid author-matched DKIM signature found",
        (7, 23) => "SPF validation failed",
        (7, 24) => "SPF validation error",
        (7, 25) => "reverse DNS validation failed",
        (7, 26) => "multiple authentication checks failed",
        (7, 27) => "sender address has null MX",
        (7, 28) => "mail flood detected (Gmail: unusual rate of unsolicited mail from this IP)",
        (7, 29) => "ARC validation failure",
        (7, 30) => "REQUIRETLS support required",
        _ => return None,
    })
}

/// The runbook's reading of a code, in the operator's terms.
fn runbook_reading(dsn: Dsn) -> &'static str {
    match (dsn.class, dsn.subject, dsn.detail) {
        (2, _, _) => "delivered",
        (4, 4, 7) | (5, 4, 7) => "gave up: the message sat in the queue past the timeout",
        (4, 4, _) => {
            "connectivity or MX problem: the remote host is unreachable, refuses connections or \
             its DNS fails; a wave of these on smtp-out points at the NAT"
        }
        (4, 7, 28) => {
            "policy: the provider rate-limits our IP for unsolicited-looking mail (reputation)"
        }
        (4, 7, 1) | (4, 7, 0) => {
            "policy: greylisting or a reputation block; greylisting clears on retry, \
             a block concentrated on one provider needs a blocklist check"
        }
        (4, 7, 23) | (4, 7, 24) => "policy: SPF soft fail or SPF error for our sending IP",
        (4, 7, _) => "policy block: greylisting, SPF soft fail or IP reputation",
        (4, 5, _) => "congestion or a protocol problem at the remote side",
        (4, 3, _) => "the remote mail system is overloaded or out of resources",
        (4, 2, 2) => "the recipient's mailbox is full (temporarily)",
        (4, 2, _) => "the recipient's mailbox is temporarily unavailable (busy)",
        (4, _, _) => "temporary failure; sendmail retries",
        (5, 1, 1) => "recipient unknown: on smtp-in, usually a stale address map (virtusertable)",
        (5, 1, _) => "addressing: the recipient or its domain does not exist",
        (5, 7, _) => "policy rejection: blocklisted IP, SPF/DKIM/DMARC failure or a provider block",
        (5, 2, _) => "the recipient's mailbox refuses mail (disabled, full, too large)",
        (5, 4, _) => "permanent routing failure (no MX, null MX, loop)",
        (5, _, _) => "permanent failure; the sender gets a bounce",
        _ => "unclassified status",
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl fmt::Display for DsnClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.class, self.subject)
    }
}

/// Writes `n` (at most 3 digits, as parsed) in decimal into `buf` at `at`; returns the new end.
fn push_number(buf: &mut [u8; 12], mut at: usize, n: u16) -> usize {
    let n = n.min(999);
    if n >= 100 {
        buf[at] = b'0' + (n / 100) as u8;
        at += 1;
    }
    if n >= 10 {
        buf[at] = b'0' + (n / 10 % 10) as u8;
        at += 1;
    }
    buf[at] = b'0' + (n % 10) as u8;
    at + 1
}

/// The code's text (`4.7.28`, or `4.7` without a detail) in a small buffer, without the
/// formatting machinery: `parse maillog` writes millions of these. Returns the buffer and the
/// length used; only ASCII digits and dots are written.
pub(crate) fn code_text(class: u8, subject: u16, detail: Option<u16>) -> ([u8; 12], usize) {
    let mut buf = [0u8; 12];
    buf[0] = b'0' + class.min(9);
    buf[1] = b'.';
    let mut end = push_number(&mut buf, 2, subject);
    if let Some(detail) = detail {
        buf[end] = b'.';
        end = push_number(&mut buf, end + 1, detail);
    }
    (buf, end)
}

fn serialize_code<S: Serializer>(
    serializer: S,
    class: u8,
    subject: u16,
    detail: Option<u16>,
) -> Result<S::Ok, S::Error> {
    let (buf, end) = code_text(class, subject, detail);
    let text = std::str::from_utf8(&buf[..end]).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(text)
}

impl Serialize for Dsn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_code(serializer, self.class, self.subject, Some(self.detail))
    }
}

impl Serialize for DsnClass {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_code(serializer, self.class, self.subject, None)
    }
}

/// Finds the enhanced code that opens an SMTP reply such as `421-4.7.28 Our system ...`,
/// `550 5.1.1 <x@y>... User unknown` or a bare `4.7.1 Greylisted`.
pub fn reply_enhanced_code(reply: &str) -> Option<Dsn> {
    let text = reply.trim_start();
    let bytes = text.as_bytes();
    let rest = if bytes.len() >= 4
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && (bytes[3] == b' ' || bytes[3] == b'-')
    {
        &text[4..]
    } else {
        text
    };
    let (dsn, used) = Dsn::parse_prefix(rest)?;
    match rest.as_bytes().get(used) {
        None | Some(b' ' | b'\t' | b',' | b';' | b')' | b'-') => Some(dsn),
        _ => None,
    }
}

/// The SMTP reply code (`421`) that opens a reply, if any.
pub fn reply_code(reply: &str) -> Option<u16> {
    let bytes = reply.trim_start().as_bytes();
    if bytes.len() >= 3
        && (b'2'..=b'5').contains(&bytes[0])
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit()
        && bytes.get(3).is_none_or(|b| matches!(b, b' ' | b'-'))
    {
        Some(
            bytes[..3]
                .iter()
                .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0')),
        )
    } else {
        None
    }
}

/// The code sendmail derives from a bare SMTP reply code when the reply carries no enhanced
/// code (its `smtptodsn`): 450 -> 4.2.0, 451 -> 4.3.0, 550 -> 5.2.0, ...
pub fn dsn_for_smtp_code(code: u16) -> Option<Dsn> {
    Some(match code {
        450 => Dsn::new(4, 2, 0),
        451 => Dsn::new(4, 3, 0),
        452 => Dsn::new(4, 3, 1),
        500 => Dsn::new(5, 5, 2),
        501 | 504 => Dsn::new(5, 5, 4),
        502 | 503 => Dsn::new(5, 5, 1),
        550 => Dsn::new(5, 2, 0),
        551 => Dsn::new(5, 1, 6),
        552 => Dsn::new(5, 2, 2),
        553 => Dsn::new(5, 1, 0),
        554 => Dsn::new(5, 0, 0),
        200..=299 => Dsn::new(2, 0, 0),
        400..=499 => Dsn::new(4, 0, 0),
        505..=549 | 555..=599 => Dsn::new(5, 0, 0),
        _ => return None,
    })
}

/// Every subject with its meaning, and the details listed above: the taxonomy table that
/// `docs/sendmail.md` documents.
pub fn known_details() -> impl Iterator<Item = (Dsn, &'static str)> {
    (0u16..=7).flat_map(|subject| {
        (0u16..=30).filter_map(move |detail| {
            let dsn = Dsn::new(4, subject, detail);
            detail_meaning(dsn).map(|meaning| (dsn, meaning))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_rejects_near_misses() {
        assert_eq!(Dsn::parse("4.7.28"), Some(Dsn::new(4, 7, 28)));
        assert_eq!(Dsn::parse("5.1.1"), Some(Dsn::new(5, 1, 1)));
        assert_eq!(Dsn::parse("2.0.0"), Some(Dsn::new(2, 0, 0)));
        assert_eq!(Dsn::parse("5.1.10"), Some(Dsn::new(5, 1, 10)));
        for bad in [
            "", "4", "4.", "4.7", "4.7.", "3.1.1", "4.7.1234", "4.1234.1", "4.7.1.", "4.7.1x",
            "x4.7.1", "4..1", "4.7.28 ", "４.7.1",
        ] {
            assert_eq!(Dsn::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn class_category_and_display() {
        let dsn = Dsn::parse("4.7.28").unwrap();
        assert_eq!(dsn.to_string(), "4.7.28");
        assert_eq!(dsn.class().to_string(), "4.7");
        assert_eq!(dsn.category(), Category::Policy);
        assert_eq!(dsn.severity(), Severity::Transient);
        assert_eq!(Category::of(None), Category::Unknown);
        assert_eq!(Dsn::new(4, 9, 0).category(), Category::Unknown);
        assert_eq!(serde_json::to_string(&dsn).unwrap(), "\"4.7.28\"");
        assert_eq!(
            serde_json::to_string(&Dsn::new(5, 100, 999)).unwrap(),
            "\"5.100.999\""
        );
        assert_eq!(
            serde_json::to_string(&Dsn::new(2, 0, 0).class()).unwrap(),
            "\"2.0\""
        );
        assert_eq!(
            serde_json::to_string(&Category::MailSystem).unwrap(),
            "\"mail-system\""
        );
    }

    #[test]
    fn meanings_and_readings() {
        assert!(Dsn::new(5, 1, 1).meaning().contains("user unknown"));
        assert_eq!(Dsn::new(4, 7, 99).meaning(), "security or policy status");
        assert!(Dsn::new(4, 4, 1).reading().contains("NAT"));
        assert!(Dsn::new(4, 7, 1).reading().contains("greylisting"));
        assert!(Dsn::new(4, 5, 0).reading().contains("congestion"));
        assert!(known_details().count() > 60);
    }

    #[test]
    fn reply_codes() {
        assert_eq!(
            reply_enhanced_code("421-4.7.28 [203.0.113.7] Our system has detected"),
            Some(Dsn::new(4, 7, 28))
        );
        assert_eq!(
            reply_enhanced_code("550 5.1.1 <x@y>... User unknown"),
            Some(Dsn::new(5, 1, 1))
        );
        assert_eq!(
            reply_enhanced_code("4.7.1 Greylisted"),
            Some(Dsn::new(4, 7, 1))
        );
        assert_eq!(reply_enhanced_code("421 Service not available"), None);
        assert_eq!(reply_enhanced_code("Connection refused by x"), None);
        assert_eq!(reply_enhanced_code("421 4.7.0x"), None);
        assert_eq!(reply_code("421-4.7.28 x"), Some(421));
        assert_eq!(reply_code("4210 x"), None);
        assert_eq!(reply_code("451"), Some(451));
        assert_eq!(dsn_for_smtp_code(451), Some(Dsn::new(4, 3, 0)));
        assert_eq!(dsn_for_smtp_code(421), Some(Dsn::new(4, 0, 0)));
        assert_eq!(dsn_for_smtp_code(600), None);
    }
}

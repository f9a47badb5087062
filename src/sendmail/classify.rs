//! From a parsed delivery line to typed evidence: status, DSN (as logged, else implied), the
//! remote reply and its enhanced code, recipient domain, provider and relay. This is the record
//! `parse maillog` prints and the runbooks reason over.

use std::borrow::Cow;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::dsn::{dsn_for_smtp_code, reply_code, reply_enhanced_code, Category, Dsn, DsnClass};
use super::implied::implied_by_text;
use super::line::{address_domain, find_byte, parse_delivery, recipients, trim, DeliveryLine};
use super::providers::ProviderTable;
use super::syslog::parse_syslog;

/// The outcome of a delivery attempt (the contract's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Sent,
    Deferred,
    Bounced,
    Other,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Deferred => "deferred",
            Status::Bounced => "bounced",
            Status::Other => "other",
        }
    }
}

/// One classified delivery line. Borrows from the line and from the provider table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub queue_id: Option<&'a str>,
    pub status: Status,
    /// The code as logged, else the code implied by sendmail's text (the contract's `dsn`).
    pub dsn: Option<Dsn>,
    /// Whether `dsn` was logged by sendmail (`dsn=`) rather than implied.
    pub dsn_logged: bool,
    /// `dsn=` as logged, even when it disagrees with `stat=` and so is not `dsn` (what the
    /// alerts' metric filters, which match `"dsn=5"`, see).
    pub logged_dsn: Option<Dsn>,
    /// The code implied by sendmail's own text (`Connection refused by ...`), when it implies one
    /// and the logged code is missing or generic (`x.y.0`).
    pub text_dsn: Option<Dsn>,
    /// The remote reply: `reply=`, else the text after `stat=Deferred: `, else `Sent (...)`.
    pub reply: Option<&'a str>,
    /// The enhanced code that opens the remote reply.
    pub reply_dsn: Option<Dsn>,
    /// Lower-case domain of the first recipient.
    pub recipient_domain: Option<Cow<'a, str>>,
    /// Number of recipients in `to=` (sendmail logs one line for several recipients at one host).
    pub recipients: usize,
    pub provider: Option<&'a str>,
    /// Relay host name without the trailing dot, else the bracketed address.
    pub relay: Option<&'a str>,
    /// The relay's bracketed address, when logged.
    pub relay_addr: Option<&'a str>,
}

impl<'a> Delivery<'a> {
    /// The contract's `dsn_class`: the first two parts of `dsn`.
    pub fn dsn_class(&self) -> Option<DsnClass> {
        self.dsn.map(Dsn::class)
    }

    /// The contract's `category`: from `dsn`'s subject, `unknown` without a code.
    pub fn category(&self) -> Category {
        Category::of(self.dsn)
    }

    /// The most specific code that tells why: the remote's enhanced code when it agrees in class
    /// with what sendmail logged (sendmail logs a generic `4.5.0` for a 421 at greeting, and a
    /// bare `4.0.0` for later messages to a host that already failed), else the code implied by
    /// sendmail's text when the logged one is generic, else the logged one.
    pub fn effective_dsn(&self) -> Option<Dsn> {
        let Some(dsn) = self.dsn else {
            return self.reply_dsn.or(self.text_dsn);
        };
        if let Some(reply) = self.reply_dsn {
            // The remote's code wins unless it is generic where sendmail's is specific.
            if reply.class == dsn.class && (dsn.is_generic() || !reply.is_generic()) {
                return Some(reply);
            }
        }
        if dsn.is_generic() {
            if let Some(text) = self.text_dsn {
                if text.class == dsn.class {
                    return Some(text);
                }
            }
        }
        Some(dsn)
    }

    /// `effective_dsn`'s class (`4.7`).
    pub fn effective_class(&self) -> Option<DsnClass> {
        self.effective_dsn().map(Dsn::class)
    }

    /// Writes the contract's fields into a struct serializer (shared by `Serialize` and the CLI,
    /// which adds `line` in front).
    pub fn serialize_fields<S: SerializeStruct>(&self, state: &mut S) -> Result<(), S::Error> {
        state.serialize_field("queue_id", &self.queue_id)?;
        state.serialize_field("status", &self.status)?;
        state.serialize_field("dsn", &self.dsn)?;
        state.serialize_field("dsn_class", &self.dsn_class())?;
        state.serialize_field("category", &self.category())?;
        state.serialize_field("recipient_domain", &self.recipient_domain)?;
        state.serialize_field("provider", &self.provider)?;
        state.serialize_field("relay", &self.relay)?;
        state.serialize_field("reply", &self.reply)?;
        state.serialize_field("reply_dsn", &self.reply_dsn)?;
        Ok(())
    }

    /// Number of fields `serialize_fields` writes.
    pub const FIELDS: usize = 10;
}

impl Serialize for Delivery<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut state = serializer.serialize_struct("Delivery", Self::FIELDS)?;
        self.serialize_fields(&mut state)?;
        state.end()
    }
}

/// Built once: constructing a substring searcher per line costs more than the search.
static TO_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"to="));

/// Classifies a whole log line (syslog prefix optional). `None` for anything that is not a
/// sendmail delivery-status line.
pub fn classify_line<'a>(line: &'a str, providers: &'a ProviderTable) -> Option<Delivery<'a>> {
    // Cheap rejection first: most lines of a mail log are not delivery lines.
    TO_FINDER.find(line.as_bytes())?;
    classify_line_with_to(line, providers)
}

/// [`classify_line`] for a caller that has already found `to=` in the line.
pub(crate) fn classify_line_with_to<'a>(
    line: &'a str,
    providers: &'a ProviderTable,
) -> Option<Delivery<'a>> {
    let syslog = parse_syslog(line);
    if let Some(program) = syslog.program {
        if !is_sendmail_program(program) {
            return None;
        }
    }
    parse_delivery(syslog.message).map(|delivery| classify(&delivery, providers))
}

/// Whether a syslog tag is sendmail's: `sm-mta`, `sendmail`, `sm-msp-queue`, or a custom
/// `-L` tag that starts with `sm-`/`sendmail`.
pub fn is_sendmail_program(program: &str) -> bool {
    program.starts_with("sm-") || program.starts_with("sendmail") || program == "sm"
}

/// What `stat=` says of this recipient, when it says it in sendmail's fixed words: `Sent`,
/// `Deferred`, `queued` (accepted at submission, not yet tried: not a deferral), and the texts of
/// permanent failures (`User unknown`, `Service unavailable`, ...: bounced). `None` for other
/// words, and for a `stat=` whose text holds a second `, stat=` (a remote reply quoting one:
/// which is sendmail's cannot be told, so the logged code decides as before).
fn stat_status(stat: &str, stat_word: Option<&str>) -> Option<Status> {
    if stat.contains(", stat=") {
        return None;
    }
    match stat_word? {
        "Sent" => Some(Status::Sent),
        "Deferred" => Some(Status::Deferred),
        "queued" => Some(Status::Other),
        // A permanent failure's own text (`User unknown`, `Service unavailable`, `Host unknown`).
        _ => implied_by_text(stat, false)
            .filter(|d| d.class == 5)
            .map(|_| Status::Bounced),
    }
}

/// Whether a code (or an SMTP reply's first digit) agrees with a status sendmail stated.
fn class_agrees(status: Status, class: u8) -> bool {
    match status {
        Status::Sent => class == 2,
        Status::Deferred => class == 4,
        Status::Bounced => class == 5,
        Status::Other => true,
    }
}

/// Classifies a parsed delivery line.
///
/// sendmail's own words win: the status is `stat=`'s (`Deferred`, `Sent`, `queued`) whatever
/// `dsn=` says, and a `dsn=` or `reply=` whose class disagrees with that status is a leftover of an
/// earlier recipient of the same envelope (sendmail 8.17 keeps the last code and reply of the
/// connection): it is not this recipient's code or reply. The reply is the `stat=` text's when it
/// carries one (`Deferred: 450 4.2.0 ...`).
pub fn classify<'a>(line: &DeliveryLine<'a>, providers: &'a ProviderTable) -> Delivery<'a> {
    let logged_any = line.dsn.and_then(|d| Dsn::parse(trim(d)));
    let stat = line.stat.map(trim);
    let stat_word = stat.map(|s| {
        // Byte search for ASCII characters: the offset is a character boundary.
        let end = s
            .bytes()
            .position(|b| matches!(b, b':' | b' ' | b'('))
            .unwrap_or(s.len());
        &s[..end]
    });
    let stated = stat.and_then(|s| stat_status(s, stat_word));
    let logged = match stated {
        Some(status) => logged_any.filter(|d| class_agrees(status, d.class)),
        None => logged_any,
    };
    let deferred_text = stat
        .and_then(|s| s.strip_prefix("Deferred"))
        .map(|rest| rest.trim_start_matches(':').trim_start());
    let sent_text = stat
        .and_then(|s| s.strip_prefix("Sent"))
        .map(|rest| trim(rest).trim_start_matches('(').trim_end_matches(')'));

    let transient_hint = match logged {
        Some(d) => d.class == 4,
        None => stat_word == Some("Deferred"),
    };
    // sendmail's own words: the deferral text, or the whole status for a failure.
    let own_text = deferred_text.or(stat).unwrap_or("");
    // Only needed without a logged code or with a generic one (the text then says more); the
    // table scan is skipped for the common specific codes.
    let text_dsn = if stat_word == Some("Sent") || logged.is_some_and(|d| !d.is_generic()) {
        None
    } else {
        implied_by_text(own_text, transient_hint)
    };

    let status = stated.unwrap_or(match (logged.map(|d| d.class), stat_word) {
        (Some(2), _) => Status::Sent,
        (Some(4), _) => Status::Deferred,
        (Some(5), _) => Status::Bounced,
        (_, Some(_)) if text_dsn.is_some_and(|d| d.class == 5) => Status::Bounced,
        _ => Status::Other,
    });

    // The remote reply: the `stat=` text's when it opens with an SMTP code, else `reply=` when
    // its code agrees with the status, else sendmail's own deferral or `Sent (...)` text.
    let stat_reply = deferred_text.filter(|t| reply_code(t).is_some());
    let logged_reply = line
        .reply
        .map(trim)
        .filter(|r| reply_code(r).is_none_or(|code| class_agrees(status, (code / 100) as u8)));
    let reply = stat_reply
        .or(logged_reply)
        .or(deferred_text)
        .or(sent_text)
        .filter(|r| !r.is_empty());
    let reply_dsn = reply.and_then(reply_enhanced_code);

    let implied = || -> Option<Dsn> {
        let from_reply = reply_dsn.or_else(|| {
            reply
                .filter(|_| status != Status::Sent)
                .and_then(reply_code)
                .and_then(dsn_for_smtp_code)
        });
        let from_reply = from_reply.filter(|d| match status {
            Status::Deferred => d.class == 4,
            Status::Bounced => d.class == 5,
            _ => true,
        });
        from_reply.or(text_dsn).or(match status {
            Status::Sent => Some(Dsn::new(2, 0, 0)),
            Status::Deferred => Some(Dsn::new(4, 0, 0)),
            _ => None,
        })
    };
    let dsn = logged.or_else(implied);

    // One pass over the list for the first recipient and the count; a list without a comma
    // (the usual single recipient) is that recipient.
    let (first, count) = if find_byte(line.to.as_bytes(), b',').is_none() {
        let only = trim(line.to);
        (
            Some(only).filter(|r| !r.is_empty()),
            usize::from(!only.is_empty()),
        )
    } else {
        let mut all = recipients(line.to);
        let first = all.next();
        (first, usize::from(first.is_some()) + all.count())
    };
    let recipient_domain = first.and_then(address_domain).map(lowercase);
    let relay = line.relay.as_ref();
    let relay_host = relay.and_then(|r| r.host);
    let provider = providers.lookup(recipient_domain.as_deref(), relay_host);

    Delivery {
        queue_id: line.queue_id,
        status,
        dsn,
        dsn_logged: logged.is_some(),
        logged_dsn: logged_any,
        text_dsn,
        reply,
        reply_dsn,
        recipient_domain,
        recipients: count,
        provider,
        relay: relay.and_then(|r| r.display()),
        relay_addr: relay.and_then(|r| r.bracketed_addr),
    }
}

fn lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ProviderTable {
        ProviderTable::builtin()
    }

    #[test]
    fn contract_example() {
        let t = table();
        let d = classify_line("Nov 28 20:14:03 ip-10-0-2-17 sm-mta[812]: 5ASKE3aB000812: to=<someone@Gmail.com>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=121458, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 [203.0.113.7] Our system has detected an unusual rate of unsolicited mail", &t).unwrap();
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["queue_id"], "5ASKE3aB000812");
        assert_eq!(json["status"], "deferred");
        assert_eq!(json["dsn"], "4.7.28");
        assert_eq!(json["dsn_class"], "4.7");
        assert_eq!(json["category"], "policy");
        assert_eq!(json["recipient_domain"], "gmail.com");
        assert_eq!(json["provider"], "google");
        assert_eq!(json["relay"], "gmail-smtp-in.l.google.com");
        assert!(json["reply"].as_str().unwrap().starts_with("421-4.7.28 "));
        assert_eq!(json["reply_dsn"], "4.7.28");
    }

    #[test]
    fn generic_greeting_code_and_reply() {
        let t = table();
        let d = classify_line("sm-mta[1]: QID00001: to=<a@example.org>, delay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.org. [192.0.2.1], dsn=4.5.0, reply=421 4.7.0 Try again later, stat=Deferred: 421 4.7.0 Try again later", &t).unwrap();
        assert_eq!(d.dsn.unwrap().to_string(), "4.5.0");
        assert_eq!(d.category(), Category::Protocol);
        assert_eq!(d.reply, Some("421 4.7.0 Try again later"));
        assert_eq!(d.reply_dsn.unwrap().to_string(), "4.7.0");
        assert_eq!(d.effective_dsn().unwrap().to_string(), "4.7.0");
        assert_eq!(d.provider, None);
    }

    #[test]
    fn dsn_less_deferrals() {
        let t = table();
        let d = classify_line("QID00001: to=<a@example.org>, delay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.org., stat=Deferred: Connection refused by mx.example.org.", &t).unwrap();
        assert_eq!(d.status, Status::Deferred);
        assert!(!d.dsn_logged);
        assert_eq!(d.dsn.unwrap().to_string(), "4.4.1");
        assert_eq!(d.reply, Some("Connection refused by mx.example.org."));
        assert_eq!(d.reply_dsn, None);
        // With sendmail's generic 4.0.0 logged, the text decides the effective code.
        let d = classify_line("QID00001: to=<a@example.org>, delay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.org., dsn=4.0.0, stat=Deferred: Connection timed out with mx.example.org.", &t).unwrap();
        assert_eq!(d.dsn.unwrap().to_string(), "4.0.0");
        assert_eq!(d.effective_dsn().unwrap().to_string(), "4.4.1");
        let d = classify_line("QID00001: to=<a@nx.example>, delay=00:00:01, mailer=esmtp, pri=1, stat=Host unknown (Name server: nx.example: host not found)", &t).unwrap();
        assert_eq!(d.status, Status::Bounced);
        assert_eq!(d.dsn.unwrap().to_string(), "5.1.2");
        let d = classify_line("QID00001: to=<a@example.org>, delay=00:00:01, mailer=esmtp, pri=1, stat=Deferred: 451 Try later", &t).unwrap();
        assert_eq!(d.dsn.unwrap().to_string(), "4.3.0");
    }

    #[test]
    fn hostile_reply_cannot_flip_the_status() {
        let t = table();
        let d = classify_line("QID00001: to=<a@example.org>, mailer=esmtp, pri=1, relay=mx.example.org. [192.0.2.1], dsn=5.7.1, reply=554 5.7.1 no, stat=Sent, stat=Service unavailable", &t).unwrap();
        assert_eq!(d.status, Status::Bounced);
    }

    #[test]
    fn sent_and_other() {
        let t = table();
        let d = classify_line("QID00001: to=<a@example.org>, delay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.org. [192.0.2.1], dsn=2.0.0, stat=Sent (QID2 Message accepted for delivery)", &t).unwrap();
        assert_eq!(d.status, Status::Sent);
        assert_eq!(d.reply, Some("QID2 Message accepted for delivery"));
        let d = classify_line(
            "QID00001: to=<a@example.org>, delay=00:00:00, mailer=esmtp, pri=30000, stat=queued",
            &t,
        )
        .unwrap();
        assert_eq!(d.status, Status::Other);
        assert_eq!(d.dsn, None);
        assert_eq!(d.category(), Category::Unknown);
        assert!(classify_line("opendkim[3]: QID00001: to=<x> stat=Sent", &t).is_none());
        assert!(classify_line("dovecot: imap-login: Login: user=<a>", &t).is_none());
    }
}

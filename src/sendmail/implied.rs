//! The code sendmail's own words imply when it logs no DSN, or only a generic one: connection
//! failures, timeouts, DNS failures and the sysexits texts (`User unknown`, `Host unknown`, ...).
//! The table is documented in `docs/sendmail.md`; the codes follow what sendmail itself assigns
//! to those conditions (deliver.c `markfailure`, usersmtp.c) and RFC 3463's subjects.

use super::dsn::Dsn;

/// One text and the code it implies. `class` 0 means "the class of the line's status"
/// (4 when deferred, 5 when bounced), for conditions sendmail reports either way.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    pub needle: &'static str,
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

const fn rule(needle: &'static str, class: u8, subject: u16, detail: u16) -> TextRule {
    TextRule {
        needle,
        class,
        subject,
        detail,
    }
}

/// Checked in order; the first text found in the status wins.
pub const TEXT_RULES: &[TextRule] = &[
    // DNS: TRY_AGAIN is transient, HOST_NOT_FOUND / NO_DATA make "Host unknown".
    rule("host name lookup failure", 4, 4, 3),
    rule("Name server: timeout", 4, 4, 3),
    rule("Host unknown", 5, 1, 2),
    rule("host not found", 0, 1, 2),
    rule("no data known", 0, 1, 2),
    rule("non-recoverable error", 0, 4, 3),
    rule("MX list for", 0, 4, 4),
    rule("Null MX", 5, 1, 10),
    // Connection set-up: no answer from the host.
    rule("Connection refused", 4, 4, 1),
    rule("Connection timed out", 4, 4, 1),
    rule("Operation timed out", 4, 4, 1),
    rule("No route to host", 4, 4, 1),
    rule("Network is unreachable", 4, 4, 1),
    rule("Host is down", 4, 4, 1),
    // An established connection that failed.
    rule("Connection reset", 4, 4, 2),
    rule("Broken pipe", 4, 4, 2),
    rule("timeout waiting for input", 4, 4, 2),
    rule("timeout writing message", 4, 4, 2),
    rule("Lost connection", 4, 4, 2),
    rule("read error from", 4, 4, 2),
    rule("Remote protocol error", 0, 5, 0),
    // Queue lifetime.
    rule("Cannot send message for", 0, 4, 7),
    rule("Insufficient disk space", 4, 3, 1),
    // sysexits texts of permanent failures.
    rule("User unknown", 5, 1, 1),
    rule("Data format error", 5, 5, 2),
    rule("Command line usage error", 5, 5, 4),
    rule("Cannot create output", 5, 3, 0),
    rule("Cannot open input", 5, 3, 0),
    rule("Permission denied", 5, 3, 0),
    rule("Local configuration error", 5, 3, 5),
    rule("Service unavailable", 5, 5, 0),
    rule("Internal error", 5, 5, 0),
    rule("Operating system error", 4, 5, 0),
    rule("I/O error", 4, 5, 0),
];

/// The length of the shortest needle.
const SHORTEST_NEEDLE: usize = {
    let mut shortest = usize::MAX;
    let mut i = 0;
    while i < TEXT_RULES.len() {
        if TEXT_RULES[i].needle.len() < shortest {
            shortest = TEXT_RULES[i].needle.len();
        }
        i += 1;
    }
    shortest
};

/// Every rule's needle in one automaton (pattern index = rule index). Built once; the
/// needles are fixed, so building cannot fail.
static RULE_MATCHER: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::new(TEXT_RULES.iter().map(|rule| rule.needle))
            .expect("the fixed needles build an automaton")
    });

/// The code implied by a status text (`stat=` without its `Deferred: ` prefix, or a reply).
/// `transient` says whether the line was a deferral, which decides the class of rules that
/// hold either way.
pub fn implied_by_text(text: &str, transient: bool) -> Option<Dsn> {
    // Most texts without a code are short (`queued`): shorter than every needle.
    if text.len() < SHORTEST_NEEDLE {
        return None;
    }
    // One pass over the text for all needles; the first rule (not the first position) wins.
    RULE_MATCHER
        .find_overlapping_iter(text)
        .map(|found| found.pattern().as_usize())
        .min()
        .map(|index| &TEXT_RULES[index])
        .map(|rule| {
            let class = match rule.class {
                0 if transient => 4,
                0 => 5,
                class => class,
            };
            Dsn::new(class, rule.subject, rule.detail)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectivity_texts() {
        let d = |t: &str| implied_by_text(t, true).map(|d| d.to_string());
        assert_eq!(
            d("Connection refused by mx.example.").as_deref(),
            Some("4.4.1")
        );
        assert_eq!(
            d("Connection timed out with mx.example.").as_deref(),
            Some("4.4.1")
        );
        assert_eq!(
            d("Name server: mx.example.: host name lookup failure").as_deref(),
            Some("4.4.3")
        );
        assert_eq!(
            d("timeout waiting for input from mx.example. during client greeting").as_deref(),
            Some("4.4.2")
        );
        assert_eq!(
            d("Cannot send message for 5 days").as_deref(),
            Some("4.4.7")
        );
        assert_eq!(d("nothing known").as_deref(), None);
    }

    /// The definition the automaton implements: the first rule whose needle occurs.
    fn by_rule_order(text: &str) -> Option<&'static TextRule> {
        TEXT_RULES.iter().find(|rule| text.contains(rule.needle))
    }

    #[test]
    fn the_first_rule_wins_not_the_first_position() {
        // "Connection refused" (rule 8) comes first in the text, "host name lookup failure"
        // (rule 0) wins.
        let text = "Connection refused by x: host name lookup failure";
        assert_eq!(implied_by_text(text, true), Some(Dsn::new(4, 4, 3)));
        // Overlapping needles: "Host unknown" inside a longer text with "host not found".
        let text = "Host unknown (Name server: nx.example: host not found)";
        assert_eq!(implied_by_text(text, false), Some(Dsn::new(5, 1, 2)));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_rule_order(
            picks in proptest::collection::vec((0..TEXT_RULES.len(), "\\PC{0,6}"), 0..4),
            transient: bool,
        ) {
            // Texts made of needles (whole or cut) and filler, in any order.
            let mut text = String::new();
            for (index, filler) in &picks {
                let needle = TEXT_RULES[*index].needle;
                text.push_str(&needle[..needle.len() - filler.len() % 2]);
                text.push_str(filler);
            }
            let expected = by_rule_order(&text).map(|rule| {
                let class = match rule.class {
                    0 if transient => 4,
                    0 => 5,
                    class => class,
                };
                Dsn::new(class, rule.subject, rule.detail)
            });
            proptest::prop_assert_eq!(implied_by_text(&text, transient), expected);
        }
    }

    #[test]
    fn permanent_texts() {
        let d = |t: &str| implied_by_text(t, false).map(|d| d.to_string());
        assert_eq!(
            d("Host unknown (Name server: nx.example: host not found)").as_deref(),
            Some("5.1.2")
        );
        assert_eq!(d("User unknown").as_deref(), Some("5.1.1"));
        assert_eq!(d("Service unavailable").as_deref(), Some("5.5.0"));
        assert_eq!(
            d("Cannot send message for 5 days").as_deref(),
            Some("5.4.7")
        );
    }
}

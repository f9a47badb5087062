//! Recipient providers: which operator runs a domain's mail (`gmail.com` -> `google`), from the
//! recipient domain or, for domains hosted elsewhere, from the relay's host name
//! (`*.protection.outlook.com` -> `microsoft`). Table-driven; `[providers] extra` in the
//! configuration adds or overrides entries.

use std::collections::HashMap;

use super::line::{find_byte, rfind_byte};
use crate::config::{ProviderEntry, ProviderEntryError, ProvidersConfig};

/// The table is fixed after construction (nothing from the logs is inserted, so no hash
/// flooding), and lookups of short domain names run for every delivery line: a fast
/// non-cryptographic hash.
type Table = HashMap<Box<str>, Box<str>, rustc_hash::FxBuildHasher>;

/// How a built-in pattern matches a domain (always lower-case, no trailing dot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this domain.
    Exact(&'static str),
    /// Any sub-domain of this domain (not the domain itself): `*.google.com`.
    Subdomains(&'static str),
    /// This label under any top-level domain, with or without a short second-level part:
    /// `hotmail.*` matches `hotmail.com`, `hotmail.fr`, `hotmail.co.uk`.
    AnyTld(&'static str),
}

/// The built-in table: (pattern, provider).
pub const BUILTIN: &[(Pattern, &str)] = {
    use Pattern::*;
    &[
        (Exact("gmail.com"), "google"),
        (Exact("googlemail.com"), "google"),
        (Exact("google.com"), "google"),
        (Subdomains("google.com"), "google"),
        (Subdomains("googlemail.com"), "google"),
        (Exact("outlook.com"), "microsoft"),
        (AnyTld("hotmail"), "microsoft"),
        (AnyTld("live"), "microsoft"),
        (AnyTld("outlook"), "microsoft"),
        (Exact("msn.com"), "microsoft"),
        (Exact("passport.com"), "microsoft"),
        (Subdomains("protection.outlook.com"), "microsoft"),
        (Subdomains("outlook.com"), "microsoft"),
        (Subdomains("hotmail.com"), "microsoft"),
        (AnyTld("yahoo"), "yahoo"),
        (Exact("ymail.com"), "yahoo"),
        (Exact("rocketmail.com"), "yahoo"),
        (Exact("aol.com"), "yahoo"),
        (Exact("aim.com"), "yahoo"),
        (Subdomains("yahoodns.net"), "yahoo"),
        (Exact("icloud.com"), "apple"),
        (Exact("me.com"), "apple"),
        (Exact("mac.com"), "apple"),
        (Subdomains("icloud.com"), "apple"),
        (Exact("proton.me"), "proton"),
        (Exact("protonmail.com"), "proton"),
        (Exact("protonmail.ch"), "proton"),
        (Exact("pm.me"), "proton"),
        (Subdomains("protonmail.ch"), "proton"),
        (Exact("fastmail.com"), "fastmail"),
        (Exact("fastmail.fm"), "fastmail"),
        (Subdomains("messagingengine.com"), "fastmail"),
        (AnyTld("gmx"), "gmx"),
        (Exact("web.de"), "gmx"),
        (Subdomains("gmx.net"), "gmx"),
        (Subdomains("web.de"), "gmx"),
        (AnyTld("yandex"), "yandex"),
        (Exact("ya.ru"), "yandex"),
        (Subdomains("yandex.ru"), "yandex"),
        (Subdomains("yandex.net"), "yandex"),
        (Exact("mail.ru"), "mail.ru"),
        (Exact("inbox.ru"), "mail.ru"),
        (Exact("list.ru"), "mail.ru"),
        (Exact("bk.ru"), "mail.ru"),
        (Subdomains("mail.ru"), "mail.ru"),
        (Exact("zoho.com"), "zoho"),
        (Exact("zohomail.com"), "zoho"),
        (AnyTld("zoho"), "zoho"),
        (Subdomains("zoho.com"), "zoho"),
        (Subdomains("zohomail.com"), "zoho"),
    ]
};

/// The lookup table: the built-ins plus the configured extras (which win).
#[derive(Debug, Clone)]
pub struct ProviderTable {
    exact: Table,
    subdomains: Table,
    any_tld: Table,
    /// The last labels (`com`, `ru`) of the `exact` keys, and of the `subdomains` keys: a domain
    /// under any other top-level domain cannot match there, and most domains of a mail log
    /// (the operator's own, `localhost`, customers' `.org`) are ruled out without hashing.
    exact_tlds: LabelFilter,
    subdomain_tlds: LabelFilter,
    /// The `any_tld` keys (`hotmail`, `yahoo`): the first label of a domain must be one.
    any_tld_labels: LabelFilter,
}

/// A small set of labels, each of up to eight bytes held as one word and compared in turn
/// (cheaper than hashing for the handful a table has). A longer label, or a set grown large,
/// passes: the filter only ever rules out what cannot match.
#[derive(Debug, Clone, Default)]
struct LabelFilter {
    words: Vec<u64>,
}

impl LabelFilter {
    /// Beyond this many labels every label passes.
    const MAX: usize = 16;

    fn of<'k>(labels: impl Iterator<Item = &'k str>) -> LabelFilter {
        let mut words: Vec<u64> = labels.map(|label| label_word(label).unwrap_or(0)).collect();
        words.sort_unstable();
        words.dedup();
        LabelFilter { words }
    }

    /// Whether a key with this label may be in the table.
    fn may_hold(&self, label: &str) -> bool {
        match label_word(label) {
            Some(word) => self.words.len() > Self::MAX || self.words.contains(&word),
            None => true,
        }
    }
}

/// A label of one to eight bytes as a little-endian word, zero-padded (a domain label holds no
/// zero byte, so the word names the label); 0 for an empty label. None when longer.
fn label_word(label: &str) -> Option<u64> {
    let bytes = label.as_bytes();
    if bytes.len() > 8 {
        return None;
    }
    let mut word = [0u8; 8];
    for (to, from) in word.iter_mut().zip(bytes) {
        *to = *from;
    }
    Some(u64::from_le_bytes(word))
}

/// `str::split_once('.')` by a byte search (a dot is a character boundary).
fn split_at_dot(text: &str) -> Option<(&str, &str)> {
    let dot = find_byte(text.as_bytes(), b'.')?;
    Some((&text[..dot], &text[dot + 1..]))
}

/// The text after the last dot, or all of it.
fn last_label(domain: &str) -> &str {
    // Byte search: a dot is a character boundary.
    match rfind_byte(domain.as_bytes(), b'.') {
        Some(dot) => &domain[dot + 1..],
        None => domain,
    }
}

impl Default for ProviderTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ProviderTable {
    /// The built-in table alone.
    pub fn builtin() -> Self {
        let mut table = ProviderTable {
            exact: Table::default(),
            subdomains: Table::default(),
            any_tld: Table::default(),
            exact_tlds: LabelFilter::default(),
            subdomain_tlds: LabelFilter::default(),
            any_tld_labels: LabelFilter::default(),
        };
        for (pattern, provider) in BUILTIN {
            let (map, key) = match pattern {
                Pattern::Exact(d) => (&mut table.exact, d),
                Pattern::Subdomains(d) => (&mut table.subdomains, d),
                Pattern::AnyTld(label) => (&mut table.any_tld, label),
            };
            map.insert((*key).into(), (*provider).into());
        }
        table.index();
        table
    }

    /// Rebuilds the last-label filters after the tables changed.
    fn index(&mut self) {
        self.exact_tlds = LabelFilter::of(self.exact.keys().map(|key| last_label(key)));
        self.subdomain_tlds = LabelFilter::of(self.subdomains.keys().map(|key| last_label(key)));
        self.any_tld_labels = LabelFilter::of(self.any_tld.keys().map(|key| &**key));
    }

    /// The built-ins plus extras: `"example.net" = "name"` (that domain) or
    /// `"*.example.net" = "name"` (its sub-domains). Extras override built-ins.
    pub fn with_extra<'a>(
        extra: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ProviderEntryError> {
        let mut table = Self::builtin();
        for (pattern, provider) in extra {
            let entry = ProviderEntry::parse(pattern, provider)?;
            let map = if entry.subdomains {
                &mut table.subdomains
            } else {
                &mut table.exact
            };
            map.insert(entry.domain.into(), entry.provider.into());
        }
        table.index();
        Ok(table)
    }

    /// The built-ins plus `[providers] extra` of the configuration.
    pub fn from_config(config: &ProvidersConfig) -> Result<Self, ProviderEntryError> {
        Self::with_extra(
            config
                .extra
                .iter()
                .map(|(pattern, provider)| (pattern.as_str(), provider.as_str())),
        )
    }

    /// The provider of a domain (any case, trailing dot allowed), if known.
    pub fn lookup_domain(&self, domain: &str) -> Option<&str> {
        let domain = domain.trim_end_matches('.');
        if domain.is_empty() || domain.len() > 253 {
            return None;
        }
        if domain.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.lookup_lower(&domain.to_ascii_lowercase());
        }
        self.lookup_lower(domain)
    }

    fn lookup_lower(&self, domain: &str) -> Option<&str> {
        // Every key a domain can match ends in the domain's own last label.
        let last = last_label(domain);
        if self.exact_tlds.may_hold(last) {
            if let Some(p) = self.exact.get(domain) {
                return Some(p);
            }
        }
        if self.subdomain_tlds.may_hold(last) {
            // Every parent domain, nearest first: a.b.google.com -> b.google.com -> google.com
            // -> com.
            let mut rest = domain;
            // Byte search: a dot is a character boundary.
            while let Some(dot) = find_byte(rest.as_bytes(), b'.') {
                rest = &rest[dot + 1..];
                if let Some(p) = self.subdomains.get(rest) {
                    return Some(p);
                }
            }
        }
        let (label, tld) = split_at_dot(domain)?;
        if !self.any_tld_labels.may_hold(label) {
            return None;
        }
        // `hotmail.com`, `hotmail.fr`, `hotmail.co.uk`, `yahoo.co.jp`; not `yahoo.evil.example`.
        let ok = match split_at_dot(tld) {
            None => !tld.is_empty(),
            Some((second, top)) => {
                (1..=3).contains(&second.len())
                    && !top.is_empty()
                    && find_byte(top.as_bytes(), b'.').is_none()
            }
        };
        if !ok {
            return None;
        }
        self.any_tld.get(label).map(|provider| &**provider)
    }

    /// The provider for a delivery: the recipient domain's, else the relay host's.
    pub fn lookup(&self, recipient_domain: Option<&str>, relay_host: Option<&str>) -> Option<&str> {
        recipient_domain
            .and_then(|d| self.lookup_domain(d))
            .or_else(|| relay_host.and_then(|h| self.lookup_domain(h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_domains() {
        let t = ProviderTable::builtin();
        for (domain, provider) in [
            ("gmail.com", "google"),
            ("GoogleMail.com.", "google"),
            ("hotmail.co.uk", "microsoft"),
            ("hotmail.fr", "microsoft"),
            ("live.com", "microsoft"),
            ("msn.com", "microsoft"),
            ("yahoo.co.jp", "yahoo"),
            ("ymail.com", "yahoo"),
            ("aol.com", "yahoo"),
            ("icloud.com", "apple"),
            ("me.com", "apple"),
            ("proton.me", "proton"),
            ("pm.me", "proton"),
            ("fastmail.com", "fastmail"),
            ("gmx.de", "gmx"),
            ("web.de", "gmx"),
            ("yandex.ru", "yandex"),
            ("mail.ru", "mail.ru"),
            ("zoho.com", "zoho"),
        ] {
            assert_eq!(t.lookup_domain(domain), Some(provider), "{domain}");
        }
        for domain in [
            "example.org",
            "yahoo.evil.example",
            "notgmail.com",
            "",
            "com",
        ] {
            assert_eq!(t.lookup_domain(domain), None, "{domain}");
        }
    }

    #[test]
    fn relay_hosts() {
        let t = ProviderTable::builtin();
        for (host, provider) in [
            ("gmail-smtp-in.l.google.com", "google"),
            ("aspmx.l.google.com.", "google"),
            ("example-com.mail.protection.outlook.com", "microsoft"),
            ("mta7.am0.yahoodns.net", "yahoo"),
            ("mx01.mail.icloud.com", "apple"),
            ("mail.protonmail.ch", "proton"),
            ("in1-smtp.messagingengine.com", "fastmail"),
            ("mx.yandex.net", "yandex"),
        ] {
            assert_eq!(t.lookup_domain(host), Some(provider), "{host}");
        }
        assert_eq!(
            t.lookup(Some("customer.example"), Some("aspmx.l.google.com")),
            Some("google")
        );
        assert_eq!(t.lookup(Some("gmail.com"), None), Some("google"));
        assert_eq!(t.lookup(None, None), None);
    }

    /// The lookup without the last-label filters: every table consulted.
    fn lookup_unfiltered<'t>(table: &'t ProviderTable, domain: &str) -> Option<&'t str> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() || domain.len() > 253 {
            return None;
        }
        if let Some(p) = table.exact.get(domain.as_str()) {
            return Some(p);
        }
        let mut rest = domain.as_str();
        while let Some(dot) = rest.find('.') {
            rest = &rest[dot + 1..];
            if let Some(p) = table.subdomains.get(rest) {
                return Some(p);
            }
        }
        let (label, tld) = domain.split_once('.')?;
        let provider = table.any_tld.get(label)?;
        let ok = match tld.split_once('.') {
            None => !tld.is_empty(),
            Some((second, top)) => {
                (1..=3).contains(&second.len()) && !top.is_empty() && !top.contains('.')
            }
        };
        ok.then_some(provider)
    }

    /// Domains near the table's keys: labels of the built-ins, their parents and children,
    /// other top-level domains, odd case and dots.
    fn near_domain() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let label = prop_oneof![
            Just("gmail"),
            Just("google"),
            Just("com"),
            Just("l"),
            Just("hotmail"),
            Just("co"),
            Just("uk"),
            Just("yahoodns"),
            Just("net"),
            Just("mail"),
            Just("ru"),
            Just("example"),
            Just("org"),
            Just("test"),
            Just("Gmail"),
            Just(""),
            Just("x1"),
            Just("googlemail"),
            Just("protection"),
            Just("outlook"),
            Just("yahoo"),
            Just("averylongtld"),
            Just("zz"),
        ];
        (prop::collection::vec(label, 1..5), any::<bool>()).prop_map(|(labels, dot)| {
            let mut domain = labels.join(".");
            if dot {
                domain.push('.');
            }
            domain
        })
    }

    /// Extras under many top-level domains (more than the filter holds) and a bare `*.com`.
    fn many_extras() -> ProviderTable {
        let tlds = [
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q",
        ];
        let patterns: Vec<String> = tlds.iter().map(|tld| format!("mx.{tld}")).collect();
        let mut extras: Vec<(&str, &str)> = patterns.iter().map(|p| (p.as_str(), "many")).collect();
        extras.push(("*.com", "anycom"));
        extras.push(("mx.averylongtld", "long"));
        extras.push(("*.org", "anyorg"));
        ProviderTable::with_extra(extras).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn filters_change_no_answer(domain in near_domain(), any in "\\PC{0,20}") {
            let builtin = ProviderTable::builtin();
            let many = many_extras();
            assert!(many.exact_tlds.words.len() > LabelFilter::MAX);
            for table in [&builtin, &many] {
                for domain in [domain.as_str(), any.as_str()] {
                    proptest::prop_assert_eq!(
                        table.lookup_domain(domain),
                        lookup_unfiltered(table, domain),
                        "{}",
                        domain
                    );
                }
            }
        }
    }

    #[test]
    fn extras_add_and_override() {
        let t = ProviderTable::with_extra([
            ("Example.NET", "someprovider"),
            ("*.mx.example.org", "other"),
            ("gmail.com", "not-google"),
        ])
        .unwrap();
        assert_eq!(t.lookup_domain("example.net"), Some("someprovider"));
        assert_eq!(t.lookup_domain("a.mx.example.org"), Some("other"));
        assert_eq!(t.lookup_domain("mx.example.org"), None);
        assert_eq!(t.lookup_domain("gmail.com"), Some("not-google"));
        assert!(matches!(
            ProviderTable::with_extra([("bad domain", "x")]),
            Err(ProviderEntryError::BadPattern(_))
        ));
        assert!(matches!(
            ProviderTable::with_extra([("*.", "x")]),
            Err(ProviderEntryError::BadPattern(_))
        ));
        assert!(matches!(
            ProviderTable::with_extra([("ok.example", "")]),
            Err(ProviderEntryError::BadName(_))
        ));
        assert!(matches!(
            ProviderTable::with_extra([("ok.example", "a b")]),
            Err(ProviderEntryError::BadName(_))
        ));
        let config = ProvidersConfig {
            extra: [("*.mx.example.org".to_string(), "other".to_string())].into(),
        };
        let t = ProviderTable::from_config(&config).unwrap();
        assert_eq!(t.lookup_domain("in.mx.example.org"), Some("other"));
        assert_eq!(t.lookup_domain("mx.example.org"), None);
        assert_eq!(t.lookup_domain("gmail.com"), Some("google"));
    }
}

//! DNS blocklists, the pure part: the query name for an IP in a zone, and what a zone's answer
//! means. A DNSBL answers an A record in 127.0.0.0/8 when the IP is listed, and NXDOMAIN when it
//! is not. Spamhaus answers 127.255.255.x when it refuses the query (for example through a public
//! resolver): that is "unknown", never "listed". The lookups themselves are an edge: `crate::dns`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// The name to query: the IPv4 octets reversed, then the zone (`7.113.0.203.zen.spamhaus.org.`).
/// IPv6 is not queried (None): most zones do not list IPv6 by this scheme.
/// The zone actually queried for a configured zone: with a Spamhaus Data Query Service key,
/// `zen.spamhaus.org` becomes `<key>.zen.dq.spamhaus.net` (the answers mean the same).
pub fn query_zone(zone: &str, dqs_key: Option<&str>) -> String {
    match dqs_key {
        Some(key)
            if zone
                .trim_end_matches('.')
                .eq_ignore_ascii_case("zen.spamhaus.org") =>
        {
            format!("{key}.zen.dq.spamhaus.net")
        }
        _ => zone.to_string(),
    }
}

pub fn query_name(ip: IpAddr, zone: &str) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let zone = zone.trim_end_matches('.');
            Some(format!("{d}.{c}.{b}.{a}.{zone}."))
        }
        IpAddr::V6(_) => None,
    }
}

/// What one zone said about one IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    Listed,
    NotListed,
    /// The zone refused to answer, the answer made no sense, or the query failed.
    Unknown,
}

/// One zone's verdict for one IP, with the meaning of each return code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneVerdict {
    pub zone: String,
    pub listing: Listing,
    pub codes: Vec<String>,
    pub meanings: Vec<String>,
}

/// Interprets a zone's answers (the A records returned; empty for NXDOMAIN).
pub fn interpret(zone: &str, answers: &[Ipv4Addr]) -> ZoneVerdict {
    let mut listing = Listing::NotListed;
    let mut meanings = Vec::new();
    for answer in answers {
        let (state, meaning) = meaning_of(zone, *answer);
        meanings.push(meaning);
        listing = match (listing, state) {
            // A refusal makes the whole answer unknown, whatever else came with it.
            (_, Listing::Unknown) | (Listing::Unknown, _) => Listing::Unknown,
            (_, Listing::Listed) => Listing::Listed,
            (current, Listing::NotListed) => current,
        };
    }
    ZoneVerdict {
        zone: zone.to_string(),
        listing,
        codes: answers.iter().map(Ipv4Addr::to_string).collect(),
        meanings,
    }
}

fn is_spamhaus(zone: &str) -> bool {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    zone == "spamhaus.org" || zone.ends_with(".spamhaus.org") || zone.ends_with(".spamhaus.net")
}

fn meaning_of(zone: &str, code: Ipv4Addr) -> (Listing, String) {
    let [a, b, c, d] = code.octets();
    if a != 127 {
        return (
            Listing::Unknown,
            format!("{code}: not a DNSBL return code (a resolver rewriting NXDOMAIN?)"),
        );
    }
    if b == 255 && c == 255 {
        let why = match d {
            252 => "typing error in the DNSBL name",
            254 => "query refused: sent through a public or unattributed resolver; configure dnsbl.nameservers",
            255 => "query refused: too many queries from this resolver",
            _ => "query refused by the blocklist",
        };
        return (Listing::Unknown, format!("{code}: {why}"));
    }
    if is_spamhaus(zone) && b == 0 && c == 0 {
        let meaning = match d {
            2 => "SBL: Spamhaus blocklist (spam source)",
            3 => "SBL CSS: snowshoe spam",
            4..=7 => "XBL: exploited or infected host",
            9 => "SBL DROP/EDROP: hijacked range",
            10 => "PBL (ISP): end-user range that should not send mail directly",
            11 => "PBL (Spamhaus): end-user range that should not send mail directly",
            _ => "listed (unrecognised Spamhaus code)",
        };
        return (Listing::Listed, format!("{code}: {meaning}"));
    }
    (Listing::Listed, format!("{code}: listed"))
}

/// The raw answers, as the replay snapshot keeps them: IP -> zone -> A records. A zone missing
/// for an IP means it was not queried (or the query failed): unknown.
pub type DnsblAnswers = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Every verdict for the IPs in `answers`, over the configured `zones`.
pub fn interpret_all(
    answers: &DnsblAnswers,
    ips: &[String],
    zones: &[String],
) -> BTreeMap<String, Vec<ZoneVerdict>> {
    let mut verdicts = BTreeMap::new();
    for ip in ips {
        let per_zone = answers.get(ip);
        let zone_verdicts = zones
            .iter()
            .map(|zone| match per_zone.and_then(|z| z.get(zone)) {
                None => ZoneVerdict {
                    zone: zone.clone(),
                    listing: Listing::Unknown,
                    codes: Vec::new(),
                    meanings: vec!["not checked (query failed or timed out)".into()],
                },
                Some(codes) => {
                    let parsed: Vec<Ipv4Addr> =
                        codes.iter().filter_map(|c| c.parse().ok()).collect();
                    if parsed.len() != codes.len() {
                        ZoneVerdict {
                            zone: zone.clone(),
                            listing: Listing::Unknown,
                            codes: codes.clone(),
                            meanings: vec!["unreadable answer".into()],
                        }
                    } else {
                        interpret(zone, &parsed)
                    }
                }
            })
            .collect();
        verdicts.insert(ip.clone(), zone_verdicts);
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn a_dqs_key_turns_zen_into_its_dq_zone_only() {
        assert_eq!(
            query_zone("zen.spamhaus.org", Some("abc123")),
            "abc123.zen.dq.spamhaus.net"
        );
        assert_eq!(query_zone("zen.spamhaus.org", None), "zen.spamhaus.org");
        assert_eq!(
            query_zone("bl.spamcop.net", Some("abc123")),
            "bl.spamcop.net"
        );
        assert_eq!(
            query_name(
                "203.0.113.7".parse().unwrap(),
                &query_zone("zen.spamhaus.org", Some("abc123"))
            )
            .as_deref(),
            Some("7.113.0.203.abc123.zen.dq.spamhaus.net.")
        );
    }

    #[test]
    fn query_names_reverse_octets() {
        assert_eq!(
            query_name("203.0.113.7".parse().unwrap(), "zen.spamhaus.org").as_deref(),
            Some("7.113.0.203.zen.spamhaus.org.")
        );
        assert_eq!(
            query_name("203.0.113.7".parse().unwrap(), "bl.spamcop.net.").as_deref(),
            Some("7.113.0.203.bl.spamcop.net.")
        );
        assert_eq!(
            query_name("2001:db8::1".parse().unwrap(), "zen.spamhaus.org"),
            None
        );
    }

    #[test]
    fn spamhaus_codes() {
        let sbl = interpret("zen.spamhaus.org", &[v4("127.0.0.2")]);
        assert_eq!(sbl.listing, Listing::Listed);
        assert!(sbl.meanings[0].contains("SBL"));
        let xbl_pbl = interpret("zen.spamhaus.org", &[v4("127.0.0.4"), v4("127.0.0.11")]);
        assert_eq!(xbl_pbl.listing, Listing::Listed);
        assert!(xbl_pbl.meanings[0].contains("XBL") && xbl_pbl.meanings[1].contains("PBL"));
        assert_eq!(
            interpret("zen.spamhaus.org", &[]).listing,
            Listing::NotListed
        );
    }

    #[test]
    fn refusals_are_unknown_never_listed() {
        for code in ["127.255.255.252", "127.255.255.254", "127.255.255.255"] {
            let verdict = interpret("zen.spamhaus.org", &[v4(code)]);
            assert_eq!(verdict.listing, Listing::Unknown, "{code}");
        }
        let mixed = interpret(
            "zen.spamhaus.org",
            &[v4("127.0.0.2"), v4("127.255.255.254")],
        );
        assert_eq!(mixed.listing, Listing::Unknown);
        // A resolver that rewrites NXDOMAIN to an ad server's address.
        assert_eq!(
            interpret("bl.spamcop.net", &[v4("198.51.100.1")]).listing,
            Listing::Unknown
        );
    }

    #[test]
    fn other_zones_any_loopback_code_is_listed() {
        let verdict = interpret("bl.spamcop.net", &[v4("127.0.0.2")]);
        assert_eq!(verdict.listing, Listing::Listed);
        assert_eq!(verdict.codes, vec!["127.0.0.2"]);
    }

    #[test]
    fn interpret_all_treats_missing_zones_as_unknown() {
        let mut answers = DnsblAnswers::new();
        answers.insert(
            "203.0.113.7".into(),
            BTreeMap::from([
                (
                    "zen.spamhaus.org".to_string(),
                    vec!["127.0.0.2".to_string()],
                ),
                ("bl.spamcop.net".to_string(), vec![]),
                (
                    "b.barracudacentral.org".to_string(),
                    vec!["garbage".to_string()],
                ),
            ]),
        );
        let zones: Vec<String> = [
            "zen.spamhaus.org",
            "bl.spamcop.net",
            "b.barracudacentral.org",
            "extra.example",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let verdicts = interpret_all(
            &answers,
            &["203.0.113.7".to_string(), "198.51.100.9".to_string()],
            &zones,
        );
        let first = &verdicts["203.0.113.7"];
        let states: Vec<Listing> = first.iter().map(|v| v.listing).collect();
        assert_eq!(
            states,
            vec![
                Listing::Listed,
                Listing::NotListed,
                Listing::Unknown,
                Listing::Unknown
            ]
        );
        assert!(verdicts["198.51.100.9"]
            .iter()
            .all(|v| v.listing == Listing::Unknown));
    }
}

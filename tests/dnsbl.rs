//! The DNSBL probe against a DNS server on loopback serving test zones: listed, not listed,
//! refused (127.255.255.254), SERVFAIL, and a server that never answers.

mod support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cabal_triage::config::DnsblConfig;
use cabal_triage::dns::DnsblProbe;
use cabal_triage::dnsbl::{interpret_all, Listing};
use support::fake_dns::{Answer, FakeDns};

fn config(nameserver: std::net::SocketAddr) -> DnsblConfig {
    DnsblConfig {
        zones: vec!["zen.test".into(), "spam.test".into(), "slow.test".into()],
        nameservers: vec![nameserver.to_string()],
        timeout_ms: 500,
        spamhaus_dqs_key_file: None,
        spamhaus_dqs_key: None,
    }
}

#[tokio::test]
async fn a_dqs_key_queries_spamhaus_dq_and_reports_under_zen() {
    let key = "abcdefghijklmnopqrstuvwxyz";
    let dns = FakeDns::start(HashMap::from([(
        format!("7.113.0.203.{key}.zen.dq.spamhaus.net."),
        Answer::A(vec!["127.0.0.3".parse().unwrap()]),
    )]))
    .await;
    let config = DnsblConfig {
        zones: vec!["zen.spamhaus.org".into()],
        nameservers: vec![dns.addr.to_string()],
        timeout_ms: 500,
        spamhaus_dqs_key_file: None,
        spamhaus_dqs_key: Some(cabal_triage::config::Secret::new(key)),
    };
    let probe = DnsblProbe::new(&config, config.timeout()).unwrap();
    let ips: Vec<IpAddr> = ["203.0.113.7", "198.51.100.9"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let outcome = probe.check(&ips).await;
    // Answered through the DQS name, reported under the configured zone; the key nowhere.
    assert_eq!(
        outcome.answers["203.0.113.7"]["zen.spamhaus.org"],
        vec!["127.0.0.3"]
    );
    assert!(!format!("{outcome:?}").contains(key), "{outcome:?}");
}

#[tokio::test]
async fn listed_not_listed_refused_failing_and_silent_zones() {
    let dns = FakeDns::start(HashMap::from([
        (
            "7.113.0.203.zen.test.".to_string(),
            Answer::A(vec!["127.0.0.2".parse().unwrap()]),
        ),
        (
            "7.113.0.203.spam.test.".to_string(),
            Answer::A(vec!["127.255.255.254".parse().unwrap()]),
        ),
        ("7.113.0.203.slow.test.".to_string(), Answer::Silent),
        ("9.100.51.198.spam.test.".to_string(), Answer::ServFail),
        (
            "9.100.51.198.slow.test.".to_string(),
            Answer::A(vec!["127.0.0.3".parse().unwrap()]),
        ),
    ]))
    .await;
    let config = config(dns.addr);
    let probe = DnsblProbe::new(&config, config.timeout()).unwrap();
    let ips: Vec<IpAddr> = ["203.0.113.7", "198.51.100.9", "2001:db8::7"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let started = Instant::now();
    let outcome = probe.check(&ips).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "queries run in parallel under the deadline: {took:?}"
    );

    assert_eq!(
        outcome.answers["203.0.113.7"]["zen.test"],
        vec!["127.0.0.2"]
    );
    assert_eq!(
        outcome.answers["203.0.113.7"]["spam.test"],
        vec!["127.255.255.254"]
    );
    assert!(
        outcome.errors["203.0.113.7"]["slow.test"].contains("timed out"),
        "{outcome:?}"
    );
    assert!(
        outcome.answers["198.51.100.9"]["zen.test"].is_empty(),
        "NXDOMAIN: not listed"
    );
    assert!(
        outcome.errors["198.51.100.9"]["spam.test"].contains("SERVFAIL")
            || outcome.errors["198.51.100.9"]["spam.test"]
                .to_lowercase()
                .contains("serv"),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.answers["198.51.100.9"]["slow.test"],
        vec!["127.0.0.3"]
    );
    assert!(outcome.skipped["2001:db8::7"].contains("IPv6"));

    let ip_texts: Vec<String> = vec!["203.0.113.7".into(), "198.51.100.9".into()];
    let verdicts = interpret_all(&outcome.answers, &ip_texts, &config.zones);
    let first: Vec<Listing> = verdicts["203.0.113.7"].iter().map(|v| v.listing).collect();
    assert_eq!(
        first,
        vec![Listing::Listed, Listing::Unknown, Listing::Unknown]
    );
    let second: Vec<Listing> = verdicts["198.51.100.9"].iter().map(|v| v.listing).collect();
    assert_eq!(
        second,
        vec![Listing::NotListed, Listing::Unknown, Listing::Listed]
    );
}

#[tokio::test]
async fn no_server_at_all_is_an_error_per_zone_not_a_hang() {
    // A bound socket that never answers, standing for an unreachable resolver.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = config(dead.local_addr().unwrap());
    let probe = DnsblProbe::new(&config, config.timeout()).unwrap();
    let started = Instant::now();
    let outcome = probe.check(&["203.0.113.7".parse().unwrap()]).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(outcome.answers.is_empty());
    assert_eq!(outcome.errors["203.0.113.7"].len(), 3);
}

//! What the DNSBL check returns: the raw answers (the replay snapshot's `dnsbl` object) and the
//! errors per IP and zone. The lookups are an edge (`crate::dns`); `crate::dnsbl` interprets
//! the answers.

use std::collections::BTreeMap;

use crate::dnsbl::DnsblAnswers;

/// What the check found: answers for the snapshot, errors for the report's steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsblOutcome {
    pub answers: DnsblAnswers,
    /// ip -> zone -> error ("timed out after 3 s", "SERVFAIL").
    pub errors: BTreeMap<String, BTreeMap<String, String>>,
    /// IPs not checked, with the reason (IPv6).
    pub skipped: BTreeMap<String, String>,
}

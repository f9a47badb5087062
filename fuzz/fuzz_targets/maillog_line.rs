//! Fuzzes the whole maillog path on one line: syslog split, sendmail message parse,
//! classification, JSON serialization and aggregation, with lossy UTF-8 decoding as the CLI does.
#![no_main]

use cabal_triage::sendmail::{
    aggregate_lines, classify_line, parse_message, parse_syslog, redact_local_parts,
    AggregateOptions, ProviderTable,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let table = ProviderTable::builtin();
    let syslog = parse_syslog(&text);
    let _ = parse_message(syslog.message);
    if let Some(delivery) = classify_line(&text, &table) {
        assert_eq!(delivery.dsn_class(), delivery.dsn.map(|d| d.class()));
        let _ = delivery.effective_dsn();
        serde_json::to_string(&delivery).expect("a delivery always serializes");
    }
    let _ = redact_local_parts(&text);
    let summary = aggregate_lines(text.lines(), &table, AggregateOptions::default());
    serde_json::to_string(&summary).expect("a summary always serializes");
});

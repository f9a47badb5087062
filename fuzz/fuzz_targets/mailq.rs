//! Fuzzes the `mailq` output parser, with lossy UTF-8 decoding as the CLI does.
#![no_main]

use cabal_triage::sendmail::parse_mailq;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let report = parse_mailq(&text);
    serde_json::to_string(&report).expect("a report always serializes");
});

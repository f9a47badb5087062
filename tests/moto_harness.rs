//! The moto harness answers like moto: tests/support/moto_serialized.py answers queries on a
//! secondary index from an index it keeps (tests/support/moto_indexed_query.py), and
//! tests/support/moto_query_equivalence.py sends the same random writes and queries to it and to
//! moto's own unchanged server and compares every answer. Run here with a new seed each time
//! (printed; `CABAL_TRIAGE_EQUIVALENCE_SEED` repeats one) so that the suite keeps trying new
//! sequences. tests/support/moto_ledger_equivalence.py does the same for every operation the
//! DynamoDB ledger uses (tests/support/moto_fast_paths.py's changes among them), replaying
//! recorded ledger requests and random ledger-shaped ones, and compares status, body and headers
//! (tests/support/moto_json_front.py answers DynamoDB requests without Flask).
//! tests/support/moto_attribute_value_equivalence.py serializes random answers holding every
//! kind of attribute value with moto's serializer and with moto_fast_paths.py's direct path.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// `CABAL_TRIAGE_EQUIVALENCE_SEED`, or a new seed each run.
fn seed() -> u64 {
    std::env::var("CABAL_TRIAGE_EQUIVALENCE_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        })
}

/// Runs one equivalence script of tests/support with `operations` and the seed; fails when it
/// reports a difference (`what_differs` says what that means) or prints none of `summary`.
fn run_equivalence(script: &str, operations: &str, what_differs: &str, summary: &[&str]) {
    let seed = seed();
    let script = format!("{}/tests/support/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .args([script.as_str(), operations, &seed.to_string()])
        .output()
        .expect("cannot run python3: install tests/requirements.txt (scripts/test.sh does)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "seed {seed}: {what_differs}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        summary.iter().all(|expected| stdout.contains(expected)),
        "seed {seed}: no summary {summary:?}: {stdout}"
    );
}

#[test]
fn indexed_queries_answer_exactly_as_moto_does() {
    run_equivalence(
        "moto_query_equivalence.py",
        "1500",
        "the indexed query answered differently from moto",
        &[" 0 differences"],
    );
}

#[test]
fn ledger_requests_answer_exactly_as_moto_does() {
    run_equivalence(
        "moto_ledger_equivalence.py",
        "1000",
        "the harness's moto answered a ledger request differently from moto",
        &["replayed 1140 recorded requests", " 0 differences"],
    );
}

#[test]
fn attribute_values_serialize_exactly_as_moto_does() {
    run_equivalence(
        "moto_attribute_value_equivalence.py",
        "3000",
        "the direct AttributeValue serialization differed from moto's serializer",
        &[
            "compared 3000 serialized answers and 600 built items",
            " 0 differences",
        ],
    );
}

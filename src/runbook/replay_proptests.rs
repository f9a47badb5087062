//! Hostile replay snapshots: a snapshot comes from a file (`triage --replay`) or from the API
//! (`evidence_snapshot`), so anything can be in it. Starting from the bundled incidents, these
//! property tests mutate the JSON (strings replaced by random or sendmail-like text, numbers by
//! extreme values, keys dropped, values swapped for other types) and check that reading the
//! snapshot either fails with a message naming the line or yields a snapshot that evidence and
//! both runbooks' rules turn into a verdict without panicking, and that the verdict is the same
//! when the same snapshot is read twice (the rules are pure).

use proptest::prelude::*;
use serde_json::Value;

use crate::config::Config;
use crate::probe::snapshot::parse as parse_snapshot;
use crate::runbook::evidence;
use crate::sendmail::ProviderTable;

/// The bundled incidents' snapshots (compiled in, so the test needs no working directory).
const EXAMPLES: [&str; 7] = [
    include_str!("../../examples/greylist-storm-one-provider/snapshot.json"),
    include_str!("../../examples/nat-stopped-4.4-wave/snapshot.json"),
    include_str!("../../examples/imap-local-delivery-failing/snapshot.json"),
    include_str!("../../examples/smtp-in-cannot-relay-to-imap/snapshot.json"),
    include_str!("../../examples/remote-congestion/snapshot.json"),
    include_str!("../../examples/spike-already-over/snapshot.json"),
    include_str!("../../examples/bounced-address-map-stale/snapshot.json"),
];

/// One change to a JSON document.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the n-th string (in document order) with this text.
    String(usize, String),
    /// Replace the n-th number with this one.
    Number(usize, i64),
    /// Remove the n-th object member.
    DropKey(usize),
    /// Replace the n-th value (any kind) with this one.
    Retype(usize, Value),
}

/// Text a hostile or broken snapshot might hold where a string goes.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        // Sendmail-shaped lines with random fields.
        (
            "[a-zA-Z0-9]{0,14}",
            "[0-9.]{0,9}",
            "[a-z0-9.\\[\\]:-]{0,30}",
            "\\PC{0,40}"
        )
            .prop_map(|(id, dsn, relay, rest)| format!(
                "Nov 28 20:14:03 h sm-mta[9]: {id}: to=<a@gmail.com>, delay=00:0{}, mailer=esmtp, relay={relay}, dsn={dsn}, stat=Deferred: {rest}",
                rest.len() % 10
            )),
        // mailq-shaped output.
        "(Total requests: [0-9]{0,25}|/var/spool/mqueue is empty|[0-9]{0,12} /etc/mail/virtusertable)\r?\n[0-9]{0,20}",
        // Dates and addresses in odd shapes.
        "(19|20|99)[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]{0,15}Z?",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,4}|[0-9a-f:]{0,39}",
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        hostile_text().prop_map(Value::String),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!([{"timestamp": -1, "message": "", "log_stream": ""}])),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), hostile_text()).prop_map(|(n, s)| Mutation::String(n, s)),
        2 => (any::<usize>(), prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(0i64), any::<i64>()])
            .prop_map(|(n, v)| Mutation::Number(n, v)),
        2 => any::<usize>().prop_map(Mutation::DropKey),
        2 => (any::<usize>(), hostile_value()).prop_map(|(n, v)| Mutation::Retype(n, v)),
    ]
}

/// Applies `mutation` to the n-th node of its kind (n modulo the number of such nodes).
fn apply(document: &mut Value, mutation: &Mutation) {
    fn count(value: &Value, kind: &dyn Fn(&Value) -> bool) -> usize {
        let own = usize::from(kind(value));
        own + match value {
            Value::Array(items) => items.iter().map(|v| count(v, kind)).sum(),
            Value::Object(members) => members.values().map(|v| count(v, kind)).sum(),
            _ => 0,
        }
    }
    fn nth<'a>(
        value: &'a mut Value,
        kind: &dyn Fn(&Value) -> bool,
        n: &mut usize,
    ) -> Option<&'a mut Value> {
        if kind(value) {
            if *n == 0 {
                return Some(value);
            }
            *n -= 1;
        }
        match value {
            Value::Array(items) => items.iter_mut().find_map(|v| nth(v, kind, n)),
            Value::Object(members) => members.values_mut().find_map(|v| nth(v, kind, n)),
            _ => None,
        }
    }
    let is_string = |v: &Value| v.is_string();
    let is_number = |v: &Value| v.is_number();
    let is_object = |v: &Value| v.as_object().is_some_and(|m| !m.is_empty());
    let any_value = |_: &Value| true;
    let (kind, index): (&dyn Fn(&Value) -> bool, usize) = match mutation {
        Mutation::String(n, _) => (&is_string, *n),
        Mutation::Number(n, _) => (&is_number, *n),
        Mutation::DropKey(n) => (&is_object, *n),
        Mutation::Retype(n, _) => (&any_value, *n),
    };
    let total = count(document, kind);
    if total == 0 {
        return;
    }
    let mut n = index % total;
    let Some(target) = nth(document, kind, &mut n) else {
        return;
    };
    match mutation {
        Mutation::String(_, text) => *target = Value::String(text.clone()),
        Mutation::Number(_, number) => *target = Value::from(*number),
        Mutation::Retype(_, value) => *target = value.clone(),
        Mutation::DropKey(n) => {
            if let Value::Object(members) = target {
                let key = members.keys().nth(n % members.len()).cloned();
                if let Some(key) = key {
                    members.remove(&key);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn mutated_snapshots_are_refused_or_judged_without_panic(
        example in 0..EXAMPLES.len(),
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let mut document: Value = serde_json::from_str(EXAMPLES[example]).unwrap();
        for m in &mutations {
            apply(&mut document, m);
        }
        let text = serde_json::to_string_pretty(&document).unwrap();
        match parse_snapshot(&text, "hostile.json") {
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.starts_with("hostile.json:"), "{message}");
            }
            Ok(snapshot) => {
                let config = Config::default();
                let providers = ProviderTable::builtin();
                let evidence = evidence::build(&snapshot, &config, &providers);
                let deferred = crate::runbook::deferred::rules::verdict(&evidence, &config.runbooks);
                let bounced = crate::runbook::bounced::rules::verdict(&evidence, &config.runbooks);
                prop_assert!(!deferred.summary.is_empty());
                prop_assert!(!bounced.summary.is_empty());
                // Pure: the same snapshot, read again, gives the same verdicts.
                let again = parse_snapshot(&text, "hostile.json").unwrap();
                let evidence_again = evidence::build(&again, &config, &providers);
                prop_assert_eq!(
                    crate::runbook::deferred::rules::verdict(&evidence_again, &config.runbooks),
                    deferred
                );
                prop_assert_eq!(
                    crate::runbook::bounced::rules::verdict(&evidence_again, &config.runbooks),
                    bounced
                );
            }
        }
    }

    #[test]
    fn arbitrary_text_is_refused_with_a_line_number(text in "\\PC{0,300}") {
        if let Err(error) = parse_snapshot(&text, "junk.json") {
            let message = error.to_string();
            prop_assert!(message.starts_with("junk.json:"), "{message}");
        }
    }
}

#[test]
fn every_example_parses_unmutated() {
    for text in EXAMPLES {
        parse_snapshot(text, "example").unwrap();
    }
}

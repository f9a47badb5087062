//! Property tests: the parsers never panic on any input, and a delivery's `dsn_class` and
//! `category` always agree with its `dsn`.

use proptest::prelude::*;

use super::*;

/// Pieces real lines are made of, so that random lines reach deep into the parsers.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Nov 28 20:14:03 host sm-mta[812]: ".to_string()),
        Just("5ASKE3aB000812: ".to_string()),
        Just("to=".to_string()),
        Just("<a@gmail.com>".to_string()),
        Just(",".to_string()),
        Just(", ".to_string()),
        Just(", [more]".to_string()),
        Just("ctladdr=".to_string()),
        Just("relay=".to_string()),
        Just("[IPv6:::1]".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("dsn=".to_string()),
        Just("4.7.28".to_string()),
        Just("5.1.1".to_string()),
        Just("reply=".to_string()),
        Just("stat=".to_string()),
        Just("Deferred: ".to_string()),
        Just("Sent (".to_string()),
        Just("421-4.7.28 ".to_string()),
        Just("Connection refused by ".to_string()),
        Just("Host unknown".to_string()),
        Just("\"".to_string()),
        Just("@".to_string()),
        Just("\r\n".to_string()),
        Just("\t\t".to_string()),
        Just("Total requests: ".to_string()),
        Just(" (3 requests)".to_string()),
        Just(" is empty".to_string()),
        Just("MTA Queue status...\n".to_string()),
        "[0-9]{1,4}".prop_map(|s| s),
        any::<String>(),
        "\\PC{0,8}".prop_map(|s| s),
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn syslog_and_message_parsers_never_panic(text in line()) {
        let syslog = parse_syslog(&text);
        let _ = parse_message(syslog.message);
        let _ = parse_message(&text);
    }

    #[test]
    fn classification_is_consistent(text in line()) {
        let table = ProviderTable::builtin();
        if let Some(d) = classify_line(&text, &table) {
            prop_assert_eq!(d.dsn_class(), d.dsn.map(|x| x.class()));
            prop_assert_eq!(d.category(), Category::of(d.dsn));
            if let Some(dsn) = d.dsn {
                let class = d.dsn_class().unwrap().to_string();
                let prefix = format!("{}.", class);
                prop_assert!(dsn.to_string().starts_with(&prefix));
            }
            let json = serde_json::to_value(&d).unwrap();
            prop_assert_eq!(json["dsn_class"].is_null(), json["dsn"].is_null());
            if d.dsn.is_none() {
                prop_assert_eq!(json["category"].as_str(), Some("unknown"));
            }
            // Deferrals are class 4, bounces class 5, whenever a code is known.
            match (d.status, d.dsn) {
                (Status::Deferred, Some(dsn)) => prop_assert_eq!(dsn.class, 4),
                (Status::Bounced, Some(dsn)) => prop_assert_eq!(dsn.class, 5),
                _ => {}
            }
        }
    }

    #[test]
    fn mailq_parser_never_panics(text in line()) {
        let report = parse_mailq(&text);
        let _ = serde_json::to_string(&report).unwrap();
    }

    #[test]
    fn redaction_never_panics_and_hides_local_parts(text in line(), local in "[a-z]{2,8}") {
        let _ = redact_local_parts(&text);
        let address = format!("x <{local}@gmail.com> y");
        let redacted = redact_local_parts(&address);
        let leaked = format!("{local}@");
        prop_assert!(!redacted.contains(&leaked));
    }

    #[test]
    fn dsn_parse_round_trips(class in prop::sample::select(vec![2u8, 4, 5]), subject in 0u16..1000, detail in 0u16..1000) {
        let text = format!("{class}.{subject}.{detail}");
        let dsn = Dsn::parse(&text).unwrap();
        prop_assert_eq!(dsn.to_string(), text.clone());
        prop_assert_eq!(serde_json::to_string(&dsn).unwrap(), format!("\"{}\"", text));
        prop_assert_eq!(
            serde_json::to_string(&dsn.class()).unwrap(),
            format!("\"{}.{}\"", class, subject)
        );
    }

    #[test]
    fn aggregator_never_panics(lines in prop::collection::vec(line(), 0..6)) {
        let table = ProviderTable::builtin();
        let summary = aggregate_lines(lines.iter().map(String::as_str), &table, AggregateOptions::default());
        prop_assert_eq!(
            summary.delivery_lines,
            summary.sent_lines + summary.deferred_lines + summary.bounced_lines + summary.other_lines
        );
    }
}

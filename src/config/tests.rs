use super::*;

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::from_toml_str(text, "test.toml", &mut vars)
}

#[test]
fn embedded_defaults_are_valid() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:9095");
    assert_eq!(config.ledger.path, PathBuf::from("./cabal-triage.db"));
    assert_eq!(config.ledger.backend, LedgerBackend::Sqlite);
    assert_eq!(config.ledger.table, "cabal-triage");
    assert!(!config.ledger.create_table);
    assert_eq!(config.worker.concurrency, 4);
    assert_eq!(config.worker.max_attempts, 3);
    assert_eq!(config.dnsbl.zones.len(), 3);
    assert_eq!(config.slack.api_base_url, "https://slack.com/api");
    assert_eq!(config.pagerduty.api_base_url, "https://api.pagerduty.com");
    assert!(config.cabalmail.tiers["smtp-out"].shared_queue);
    // smtp-in's queue is on EFS as deployed (the smtp-in-queue volume), like smtp-out's.
    assert!(config.cabalmail.tiers["smtp-in"].shared_queue);
    assert!(!config.cabalmail.tiers["imap"].shared_queue);
    assert!(config.auth.require_for_serve().is_err());
}

#[test]
fn shipped_example_file_is_valid_and_matches_defaults() {
    let text = include_str!("../../config/cabal-triage.toml");
    let config = load(text, &[]).unwrap();
    let defaults = load("", &[]).unwrap();
    assert_eq!(config.to_masked_toml(), defaults.to_masked_toml());
}

#[test]
fn contract_environment_variables() {
    let config = load(
        "",
        &[
            ("CABAL_TRIAGE_LISTEN", "127.0.0.1:1234"),
            ("CABAL_TRIAGE_LEDGER", "/tmp/x.db"),
            ("CABAL_TRIAGE_LEDGER_BACKEND", "dynamodb"),
            ("CABAL_TRIAGE_LEDGER_TABLE", "t1"),
            ("CABAL_TRIAGE_LEDGER_CREATE_TABLE", "true"),
            ("CABAL_TRIAGE_WEBHOOK_TOKEN", "0123456789abcdef0123"),
            ("CABAL_TRIAGE_AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("CABAL_TRIAGE_DNSBL_ZONES", "a.example, b.example"),
            ("CABAL_TRIAGE_DNSBL_NAMESERVERS", "127.0.0.1:5353"),
            ("CABAL_TRIAGE_SLACK_API_BASE_URL", "http://127.0.0.1:1/api"),
            ("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-1"),
            ("CABAL_TRIAGE_SLACK_CHANNEL", "C123"),
            ("CABAL_TRIAGE_PAGERDUTY_API_BASE_URL", "http://127.0.0.1:2"),
            ("CABAL_TRIAGE_PAGERDUTY_API_TOKEN", "pd"),
            ("CABAL_TRIAGE_PAGERDUTY_FROM", "oncall@example.com"),
            ("CABAL_TRIAGE__WORKER__CONCURRENCY", "7"),
            ("UNRELATED", "x"),
        ],
    )
    .unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:1234");
    assert_eq!(config.ledger.path, PathBuf::from("/tmp/x.db"));
    assert_eq!(config.ledger.backend, LedgerBackend::Dynamodb);
    assert_eq!(config.ledger.table, "t1");
    assert!(config.ledger.create_table);
    assert_eq!(config.auth.webhook_tokens.len(), 1);
    assert_eq!(
        config.aws.endpoint_for("logs"),
        Some("http://127.0.0.1:5000")
    );
    assert_eq!(config.dnsbl.zones, vec!["a.example", "b.example"]);
    assert_eq!(config.dnsbl.nameservers, vec!["127.0.0.1:5353"]);
    assert_eq!(config.slack.channel.as_deref(), Some("C123"));
    assert_eq!(config.slack.bot_token.as_ref().unwrap().expose(), "xoxb-1");
    assert_eq!(
        config.pagerduty.from_email.as_deref(),
        Some("oncall@example.com")
    );
    assert_eq!(config.worker.concurrency, 7);
    let masked = config.to_masked_toml();
    assert!(!masked.contains("xoxb-1"), "{masked}");
    assert!(!masked.contains("0123456789abcdef0123"), "{masked}");
}

#[test]
fn env_token_adds_to_file_tokens_for_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        "# current\nold-token-0123456789\n\nnew-token-0123456789\n",
    )
    .unwrap();
    let text = format!(
        "[auth]\nwebhook_tokens_file = {:?}\n",
        file.display().to_string()
    );
    let config = load(
        &text,
        &[("CABAL_TRIAGE_WEBHOOK_TOKEN", "env-token-0123456789")],
    )
    .unwrap();
    let tokens: Vec<&str> = config
        .auth
        .webhook_tokens
        .iter()
        .map(Secret::expose)
        .collect();
    assert_eq!(
        tokens,
        vec![
            "env-token-0123456789",
            "old-token-0123456789",
            "new-token-0123456789"
        ]
    );
}

#[test]
fn bad_configs_name_the_key() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("[server]\nlisten = \"nope\"\n", &[], "server.listen"),
        ("[server]\nlistn = \"127.0.0.1:1\"\n", &[], "listn"),
        ("[worker]\nconcurrency = 0\n", &[], "worker.concurrency"),
        ("[worker]\nconcurrency = \"four\"\n", &[], "concurrency"),
        ("[ledger]\nbackend = \"postgres\"\n", &[], "postgres"),
        (
            "[dnsbl]\nnameservers = [\"localhost\"]\n",
            &[],
            "dnsbl.nameservers",
        ),
        (
            "[cabalmail.tiers.pop3]\nservice = \"a\"\ncontainer = \"b\"\nlog_group = \"c\"\n",
            &[],
            "cabalmail.tiers.pop3",
        ),
        (
            "",
            &[("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-1")],
            "slack.channel",
        ),
        (
            "",
            &[("CABAL_TRIAGE_PAGERDUTY_API_TOKEN", "x")],
            "pagerduty.from_email",
        ),
        (
            "",
            &[("CABAL_TRIAGE_WEBHOOK_TOKEN", "short")],
            "auth.webhook_tokens",
        ),
        (
            "",
            &[("CABAL_TRIAGE_LEDGER_CREATE_TABLE", "maybe")],
            "CABAL_TRIAGE_LEDGER_CREATE_TABLE",
        ),
        ("", &[("CABAL_TRIAGE__WORKER", "1")], "CABAL_TRIAGE__WORKER"),
        (
            "[auth]\nwebhook_tokens_file = \"/nonexistent/tokens\"\n",
            &[],
            "auth.webhook_tokens_file",
        ),
        ("[slack\n", &[], "test.toml"),
        (
            "[slack]\napi_base_url = \"ftp://x\"\n",
            &[],
            "slack.api_base_url",
        ),
    ];
    for (text, vars, needle) in cases {
        let error = load(text, vars).expect_err(text);
        let message = error.to_string();
        assert!(message.contains(needle), "{text:?}: {message}");
    }
}

#[test]
fn warns_about_clear_secrets_in_the_file() {
    let text = "[auth]\nwebhook_tokens = [\"0123456789abcdef0123\"]\n";
    let config = load(text, &[]).unwrap();
    let warnings = config.warnings(Some(text));
    assert!(
        warnings.iter().any(|w| w.contains("auth.webhook_tokens")),
        "{warnings:?}"
    );
}

#[test]
fn the_shipped_file_with_empty_secret_lists_gives_no_warning() {
    let text = include_str!("../../config/cabal-triage.toml");
    let config = load(text, &[]).unwrap();
    assert_eq!(config.warnings(Some(text)), Vec::<String>::new());
}

#[test]
fn probe_settings_have_the_issue_defaults_and_are_checked() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.probes.log_max_events_per_tier, 20_000);
    assert_eq!(config.probes.log_max_bytes_per_tier, 8 * 1024 * 1024);
    assert_eq!(config.probes.log_min_window_secs, 30 * 60);
    assert_eq!(config.probes.log_lookback_before_start_secs, 15 * 60);
    let config = load("", &[("CABAL_TRIAGE__PROBES__LOG_PAGE_LIMIT", "50")]).unwrap();
    assert_eq!(config.probes.log_page_limit, 50);
    for (text, key) in [
        ("[probes]\nlog_page_limit = 10001", "probes.log_page_limit"),
        ("[probes]\nlog_page_limit = 0", "probes.log_page_limit"),
        (
            "[probes]\nlog_scan_deadline_secs = 0",
            "probes.log_scan_deadline_secs",
        ),
        (
            "[probes]\nlog_max_events_per_tier = 0",
            "probes.log_max_events_per_tier",
        ),
        (
            "[probes]\nlog_max_window_secs = 60",
            "probes.log_max_window_secs",
        ),
        (
            "[probes]\nthrottle_backoff_max_ms = 1",
            "probes.throttle_backoff_max_ms",
        ),
    ] {
        let err = load(text, &[]).unwrap_err();
        assert!(err.to_string().contains(key), "{text}: {err}");
    }
    assert!(load("[probes]\nlog_scan_deadline = 3", &[]).is_err());
}

#[test]
fn providers_extra_extends_the_table_and_is_validated() {
    let config = load(
        "[providers]\nextra = { \"example.net\" = \"someprovider\", \"*.mx.example.org\" = \"other\" }\n",
        &[],
    )
    .unwrap();
    let entries = config.providers.entries().unwrap();
    assert_eq!(
        entries,
        [
            ProviderEntry {
                domain: "mx.example.org".into(),
                subdomains: true,
                provider: "other".into(),
            },
            ProviderEntry {
                domain: "example.net".into(),
                subdomains: false,
                provider: "someprovider".into(),
            },
        ]
    );
    let error = load("[providers]\nextra = { \"not a domain\" = \"x\" }\n", &[]).unwrap_err();
    assert!(error.to_string().contains("providers.extra"), "{error}");
}

#[test]
fn exec_section_defaults_and_limits() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.exec.mailq_command, "mailq | tail -1");
    assert_eq!(config.exec.task_deadline_secs, 10);
    assert_eq!(config.exec.output_cap_bytes, 65536);
    for (text, key) in [
        ("[exec]\nmailq_command = \"  \"", "exec.mailq_command"),
        ("[exec]\ntask_deadline_secs = 0", "exec.task_deadline_secs"),
        (
            "[exec]\ntask_deadline_secs = 1200",
            "exec.task_deadline_secs",
        ),
        ("[exec]\noutput_cap_bytes = 10", "exec.output_cap_bytes"),
    ] {
        let error = load(text, &[]).unwrap_err().to_string();
        assert!(error.contains(key), "{text}: {error}");
    }
    assert!(
        load("[exec]\ncommand = \"x\"", &[]).is_err(),
        "unknown key refused"
    );
}

#[test]
fn slack_routes_by_label_and_webhook_mode_needs_its_url() {
    let config = load(
        r#"
[slack]
channel = "C0DEFAULT"
[[slack.routes]]
label = "severity"
value = "critical"
channel = "C0CRITICAL"
"#,
        &[("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-1")],
    )
    .unwrap();
    let labels = |severity: &str| {
        std::collections::BTreeMap::from([("severity".to_string(), severity.to_string())])
    };
    assert_eq!(
        config.slack.channel_for(&labels("critical")),
        Some("C0CRITICAL")
    );
    assert_eq!(
        config.slack.channel_for(&labels("warning")),
        Some("C0DEFAULT")
    );
    assert!(config.slack.enabled());
    let error = load("[slack]\nmode = \"webhook\"\n", &[]).unwrap_err();
    assert!(error.to_string().contains("slack.webhook_url"), "{error}");
    let webhook = load(
        "[slack]\nmode = \"webhook\"\n",
        &[(
            "CABAL_TRIAGE_SLACK_WEBHOOK_URL",
            "https://hooks.example/T/B/x",
        )],
    )
    .unwrap();
    assert!(webhook.slack.enabled());
    assert!(!webhook.to_masked_toml().contains("hooks.example"));
    let error = load("[delivery]\nmax_attempts = 0\n", &[]).unwrap_err();
    assert!(
        error.to_string().contains("delivery.max_attempts"),
        "{error}"
    );
}

#[test]
fn environment_overrides_reach_any_depth_and_keep_the_defaults_beside_them() {
    let config = load(
        "",
        &[
            (
                "CABAL_TRIAGE__CABALMAIL__TIERS__SMTP_OUT__LOG_GROUP",
                "/ecs/mail-out",
            ),
            (
                "CABAL_TRIAGE__AWS__ENDPOINTS__LOGS",
                "http://127.0.0.1:4566",
            ),
        ],
    )
    .unwrap();
    let tiers = &config.cabalmail.tiers;
    assert_eq!(tiers.len(), 3, "the other tiers stay: {tiers:?}");
    assert_eq!(tiers["smtp-out"].log_group, "/ecs/mail-out");
    assert_eq!(tiers["smtp-out"].service, "cabal-smtp-out");
    assert_eq!(tiers["smtp-in"].log_group, "/ecs/cabal-smtp-in");
    assert_eq!(config.aws.endpoints["logs"], "http://127.0.0.1:4566");

    // Over a file's own tier table: the file's other keys stay, `_` matches the file's `-`.
    let file = "[cabalmail.tiers.smtp-in]\nservice = \"mail-in\"\ncontainer = \"in\"\nlog_group = \"/x\"\n";
    let config = load(
        file,
        &[(
            "CABAL_TRIAGE__CABALMAIL__TIERS__SMTP_IN__CONTAINER",
            "sendmail",
        )],
    )
    .unwrap();
    let tier = &config.cabalmail.tiers["smtp-in"];
    assert_eq!(
        (tier.service.as_str(), tier.container.as_str()),
        ("mail-in", "sendmail")
    );

    // A list setting takes a comma-separated list, over the defaults and over a file's list.
    let config = load(
        "[dnsbl]\nzones = [\"zen.spamhaus.org\"]\n",
        &[
            ("CABAL_TRIAGE__SLACK__ALLOWED_USERS", "U0123ABC, S0456DEF"),
            ("CABAL_TRIAGE__DNSBL__ZONES", "bl.example.org"),
        ],
    )
    .unwrap();
    assert_eq!(config.slack.allowed_users, ["U0123ABC", "S0456DEF"]);
    assert_eq!(config.dnsbl.zones, ["bl.example.org"]);

    // A key that is not a table on the way is an error naming it.
    let error = load("", &[("CABAL_TRIAGE__CABALMAIL__CLUSTER__NAME", "x")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("cabalmail.cluster"), "{error}");
}

#[test]
fn a_secret_never_appears_in_an_error_through_toml_env_or_file() {
    // Numeric on purpose: a number is what the type checks trip over, and what serde quotes.
    const VALUE: &str = "8675309314159265";
    let named: &[(&str, &str, &str)] = &[
        ("auth", "webhook_tokens", "CABAL_TRIAGE_WEBHOOK_TOKEN"),
        ("auth", "read_tokens", "CABAL_TRIAGE_READ_TOKEN"),
        ("slack", "bot_token", "CABAL_TRIAGE_SLACK_BOT_TOKEN"),
        ("slack", "webhook_url", "CABAL_TRIAGE_SLACK_WEBHOOK_URL"),
        ("pagerduty", "api_token", "CABAL_TRIAGE_PAGERDUTY_API_TOKEN"),
        ("ntfy", "token", "CABAL_TRIAGE_NTFY_TOKEN"),
        ("ntfy", "password", "CABAL_TRIAGE__NTFY__PASSWORD"),
        ("pushover", "app_token", "CABAL_TRIAGE_PUSHOVER_APP_TOKEN"),
        ("pushover", "user_key", "CABAL_TRIAGE_PUSHOVER_USER_KEY"),
        ("alertmanager", "token", "CABAL_TRIAGE_ALERTMANAGER_TOKEN"),
        ("slack", "app_token", "CABAL_TRIAGE_SLACK_APP_TOKEN"),
    ];
    assert_eq!(
        named.len(),
        secret::SECRET_KEYS.len(),
        "every secret key is tested"
    );
    let dir = tempfile::tempdir().unwrap();
    for &(section, key, var) in named {
        let file = dir.path().join(format!("{section}-{key}"));
        std::fs::write(&file, format!("{VALUE}\n")).unwrap();
        let generic = format!(
            "CABAL_TRIAGE__{}__{}",
            section.to_uppercase(),
            key.to_uppercase()
        );
        let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
            (format!("[{section}]\n{key} = {VALUE}\n"), vec![]),
            (format!("[{section}]\n{key} = [{VALUE}]\n"), vec![]),
            (
                format!("[{section}]\n{key} = {{ v = \"{VALUE}\" }}\n"),
                vec![],
            ),
            (format!("[{section}]\n{key} = \"{VALUE}\"\n"), vec![]),
            (String::new(), vec![(generic.as_str(), VALUE)]),
            (String::new(), vec![(var, VALUE)]),
            (
                format!(
                    "[{section}]\n{key}_file = {:?}\n",
                    file.display().to_string()
                ),
                vec![],
            ),
            (
                // The same secret in a mode that validates it (Slack's webhook URL is checked).
                format!(
                    "[slack]\nmode = \"webhook\"\n[{section}]\n{key}_file = {:?}\n",
                    file.display().to_string()
                ),
                vec![],
            ),
        ];
        for (text, vars) in cases {
            match load(&text, &vars) {
                Ok(config) => {
                    let shown = format!("{config:?}\n{}", config.to_masked_toml());
                    assert!(!shown.contains(VALUE), "{section}.{key}: {text} {vars:?}");
                }
                Err(error) => {
                    let shown = format!("{error}\n{error:?}");
                    assert!(
                        !shown.contains(VALUE),
                        "{section}.{key} ({text} {vars:?}) printed the secret: {shown}"
                    );
                    if text.contains(&format!("{key} = ")) && !text.contains('"') {
                        // A type error: it names the key it is about.
                        assert!(shown.contains(&format!("{section}.{key}")), "{shown}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_secret_through_the_generic_environment_form_is_taken_as_text() {
    let config = load(
        "",
        &[
            (
                "CABAL_TRIAGE__AUTH__WEBHOOK_TOKENS",
                "8675309314159265,2718281828459045",
            ),
            ("CABAL_TRIAGE__PAGERDUTY__API_TOKEN", "8675309314159265"),
            ("CABAL_TRIAGE_PAGERDUTY_FROM", "oncall@example.com"),
        ],
    )
    .expect("numeric-looking secrets are text");
    assert_eq!(config.auth.webhook_tokens.len(), 2);
    assert_eq!(
        config.pagerduty.api_token.as_ref().map(Secret::expose),
        Some("8675309314159265")
    );
}

#[test]
fn a_token_of_few_distinct_characters_is_refused_naming_the_key_not_the_value() {
    for (var, key) in [
        ("CABAL_TRIAGE_WEBHOOK_TOKEN", "auth.webhook_tokens"),
        ("CABAL_TRIAGE_READ_TOKEN", "auth.read_tokens"),
    ] {
        for weak in [
            "aaaaaaaaaaaaaaaa",
            "abababababababababababab",
            "abcdefgabcdefgabcdefg",
        ] {
            let error = load("", &[(var, weak)]).unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
            assert!(error.contains("distinct characters"), "{error}");
            assert!(!error.contains(weak), "{error}");
        }
        // Eight distinct characters pass, and so does any random token.
        load("", &[(var, "abcdefghabcdefgh")]).unwrap();
        load("", &[(var, "3f9c2a7e41d08b65c1e9")]).unwrap();
    }
}

#[test]
fn a_secret_file_readable_by_others_is_a_warning_naming_key_and_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "do-not-print-3f9c2a7e41d08b65\n").unwrap();
    let text = format!("[auth]\nwebhook_tokens_file = \"{}\"\n", tokens.display());
    for (mode, warned) in [(0o644, true), (0o640, true), (0o600, false), (0o400, false)] {
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(mode)).unwrap();
        let config = load(&text, &[]).unwrap();
        let warnings: Vec<String> = config
            .warnings(Some(&text))
            .into_iter()
            .filter(|w| w.contains("group or others"))
            .collect();
        assert_eq!(
            warnings.len(),
            usize::from(warned),
            "{mode:o}: {warnings:?}"
        );
        for warning in warnings {
            assert!(
                warning.starts_with("auth.webhook_tokens_file: "),
                "{warning}"
            );
            assert!(warning.contains(&tokens.display().to_string()), "{warning}");
            assert!(warning.contains(&format!("{mode:04o}")), "{warning}");
            assert!(!warning.contains("do-not-print"), "{warning}");
        }
    }
}

#[test]
fn ntfy_pushover_and_unknown_alert_settings() {
    let config = load("", &[]).unwrap();
    assert!(!config.ntfy.enabled() && !config.pushover.enabled());
    assert_eq!(config.notify.unknown_alerts, UnknownAlerts::Post);
    assert_eq!(config.pushover.severities, ["critical"]);
    let config = load(
        "",
        &[
            ("CABAL_TRIAGE_NTFY_BASE_URL", "https://ntfy.example"),
            ("CABAL_TRIAGE_NTFY_TOPIC", "cabal-alerts"),
            ("CABAL_TRIAGE_NTFY_TOKEN", "tk_abc"),
            ("CABAL_TRIAGE_PUSHOVER_APP_TOKEN", "app"),
            ("CABAL_TRIAGE_PUSHOVER_USER_KEY", "user"),
            ("CABAL_TRIAGE_UNKNOWN_ALERTS", "ignore"),
        ],
    )
    .unwrap();
    assert!(config.ntfy.enabled() && config.pushover.enabled());
    assert_eq!(config.notify.unknown_alerts, UnknownAlerts::Ignore);
    for (text, key) in [
        ("[ntfy]\ntopic = \"no/slash\"\n", "ntfy.topic"),
        ("[ntfy]\npriority_critical = 9\n", "ntfy.priority_critical"),
        ("[ntfy]\nbase_url = \"ftp://x\"\n", "ntfy.base_url"),
        ("[ntfy]\nusername = \"u\"\n", "ntfy.username"),
        (
            "[pushover]\npriority_critical = 2\n",
            "pushover.priority_critical",
        ),
        (
            "[notify]\nunknown_alerts = \"shout\"\n",
            "notify.unknown_alerts",
        ),
    ] {
        let error = load(text, &[]).unwrap_err().to_string();
        assert!(error.contains(key), "{text}: {error}");
    }
}

#[test]
fn the_spamhaus_dqs_key_is_read_from_its_file_checked_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dqs");
    std::fs::write(&file, "abcdefghijklmnopqrstuvwxyz\n").unwrap();
    let text = format!(
        "[dnsbl]\nspamhaus_dqs_key_file = {:?}\n",
        file.display().to_string()
    );
    let config = load(&text, &[]).unwrap();
    assert_eq!(
        config.dnsbl.spamhaus_dqs_key.as_ref().map(Secret::expose),
        Some("abcdefghijklmnopqrstuvwxyz")
    );
    assert!(!config
        .to_masked_toml()
        .contains("abcdefghijklmnopqrstuvwxyz"));
    // Anything but the key alone (a shell line, two keys) is refused, naming the setting.
    std::fs::write(&file, "abc; rm -rf /\n").unwrap();
    let error = load(&text, &[]).unwrap_err().to_string();
    assert!(error.contains("dnsbl.spamhaus_dqs_key_file"), "{error}");
    assert!(!error.contains("rm -rf"), "{error}");
}

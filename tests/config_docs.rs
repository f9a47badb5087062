//! Keeps docs/configuration.md from going stale: every key of config/cabal-triage.toml (the
//! active ones and the commented-out examples) and every key of the embedded defaults must be
//! named there as `` `section.key` ``. Per-tier, per-service and per-route keys are documented
//! once with a placeholder (`cabalmail.tiers.<tier>.service`, `aws.endpoints.<service>`,
//! `slack.routes[].label`).

use std::collections::BTreeSet;

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// Replaces instance names with the placeholder the documentation uses.
fn normalize(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["cabalmail", "tiers", _tier, field] => format!("cabalmail.tiers.<tier>.{field}"),
        ["cabalmail", "tiers", _tier] => "cabalmail.tiers".to_string(),
        ["aws", "endpoints", _service] => "aws.endpoints.<service>".to_string(),
        ["slack", "routes", field] => format!("slack.routes[].{field}"),
        ["services", field] => format!("services[].{field}"),
        _ => key.to_string(),
    }
}

/// Dotted keys of a TOML table (tables recurse; arrays of tables add `[]` fields).
fn table_keys(prefix: &str, table: &toml::Table, keys: &mut BTreeSet<String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => {
                if prefix.is_empty() || key.starts_with("cabalmail.tiers") || key == "aws.endpoints"
                {
                    table_keys(&key, inner, keys);
                } else {
                    // An inline map such as providers.extra is one key.
                    keys.insert(key);
                }
            }
            toml::Value::Array(items) if items.iter().all(toml::Value::is_table) => {
                keys.insert(key.clone());
                for item in items {
                    if let Some(item) = item.as_table() {
                        table_keys(&key, item, keys);
                    }
                }
            }
            _ => {
                keys.insert(key);
            }
        }
    }
}

/// Keys of `# key = value` example lines, in the section of the latest (possibly commented)
/// header.
fn commented_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let active = line.trim();
        let commented = active.strip_prefix('#').map(str::trim);
        let candidate = commented.unwrap_or(active);
        if let Some(header) = candidate
            .strip_prefix("[[")
            .and_then(|h| h.strip_suffix("]]"))
            .or_else(|| {
                candidate
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
            })
        {
            section = header.trim().to_string();
            continue;
        }
        let Some(comment) = commented else { continue };
        let Some((name, _)) = comment.split_once(" = ") else {
            continue;
        };
        let name = name.trim();
        if !section.is_empty()
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        {
            keys.insert(format!("{section}.{name}"));
        }
    }
    keys
}

fn documented_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let shipped = repo_file("config/cabal-triage.toml");
    let table: toml::Table = shipped.parse().expect("config/cabal-triage.toml parses");
    table_keys("", &table, &mut keys);
    keys.extend(commented_keys(&shipped));
    let defaults = toml::to_string(&cabal_triage::config::Config::default())
        .expect("defaults serialize to TOML");
    let defaults: toml::Table = defaults.parse().unwrap();
    table_keys("", &defaults, &mut keys);
    keys.into_iter().map(|k| normalize(&k)).collect()
}

#[test]
fn every_config_key_is_documented() {
    let docs = repo_file("docs/configuration.md");
    let keys = documented_keys();
    assert!(
        keys.len() > 60,
        "the key walk found too few keys to be right: {keys:?}"
    );
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| !docs.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys of config/cabal-triage.toml or of the defaults missing from docs/configuration.md \
         (document each as `section.key` with default, environment variable and meaning): {missing:?}"
    );
}

#[test]
fn the_key_walk_sees_commented_and_nested_keys() {
    let keys = documented_keys();
    for expected in [
        "server.public_url",
        "aws.profile",
        "aws.endpoints.<service>",
        "cabalmail.tiers.<tier>.shared_queue",
        "slack.routes[].channel",
        "slack.bot_token_file",
        "providers.extra",
        "delivery.budget_secs",
    ] {
        assert!(keys.contains(expected), "{expected} not found in {keys:?}");
    }
    assert!(!keys.iter().any(|k| k.contains("smtp-out")), "{keys:?}");
}

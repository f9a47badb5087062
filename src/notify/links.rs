//! Links to the evidence, built from configuration and the verdict only (never from the alert's
//! labels or Alertmanager's `externalURL`, which choose no URL): the CloudWatch Logs Insights
//! console with the offending tier's log group, the triage's window and a filter prefilled; the
//! configured Alertmanager's new-silence page for the alert group; dashboard URL templates. The
//! renderers show them (Slack's context line, ntfy's `view` actions, Pushover's `url`, the
//! PagerDuty note).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::alert::{group_matchers, WebhookAlert};
use crate::config::{Config, DashboardLink};
use crate::report::render::kebab;
use crate::report::verdict::ReportVerdict;
use crate::report::Report;

/// What the links are built from, taken once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct LinkSettings {
    /// `aws.region`: no console link without it.
    pub region: Option<String>,
    /// Log group per tier (`cabalmail.tiers.<tier>.log_group`).
    pub log_groups: BTreeMap<String, String>,
    /// Tier and log group per configured ECS service (`[[services]]`), for the restart-loop
    /// runbook's verdict, which names a service rather than a tier.
    pub service_logs: BTreeMap<String, (String, String)>,
    /// `probes.log_lookback_before_start_secs`, `probes.log_max_window_secs`.
    pub lookback_secs: u64,
    pub max_window_secs: u64,
    /// `alertmanager.url`.
    pub alertmanager_url: Option<String>,
    /// `links.dashboards`.
    pub dashboards: Vec<DashboardLink>,
}

impl LinkSettings {
    pub fn from_config(config: &Config) -> Self {
        LinkSettings {
            region: config.aws.region.clone(),
            log_groups: config
                .cabalmail
                .tiers
                .iter()
                .map(|(tier, c)| (tier.clone(), c.log_group.clone()))
                .collect(),
            service_logs: config
                .services
                .names()
                .into_iter()
                .filter_map(|name| {
                    let service = config.services.get(&name)?;
                    Some((name, (service.tier.clone(), service.log_group.clone())))
                })
                .collect(),
            lookback_secs: config.probes.log_lookback_before_start_secs,
            max_window_secs: config.probes.log_max_window_secs,
            alertmanager_url: config.alertmanager.url.clone(),
            dashboards: config.links.dashboards.clone(),
        }
    }
}

/// The tier a verdict points at: the sendmail runbooks' offending tier, imap for the IMAP
/// runbook, the configured tier of the restart-loop runbook's service.
fn verdict_tier(settings: &LinkSettings, verdict: &ReportVerdict) -> Option<String> {
    match verdict {
        ReportVerdict::Sendmail(v) => Some(kebab(&v.offending_tier)),
        ReportVerdict::ImapAuth(_) => Some("imap".to_string()),
        ReportVerdict::RestartLoop(v) => settings.service_logs.get(&v.service).map(|s| s.0.clone()),
    }
}

/// The log group to open: the service's own for the restart-loop runbook, else the tier's.
fn verdict_log_group<'a>(
    settings: &'a LinkSettings,
    verdict: &ReportVerdict,
    tier: &str,
) -> Option<&'a String> {
    match verdict {
        ReportVerdict::RestartLoop(v) => settings.service_logs.get(&v.service).map(|s| &s.1),
        _ => settings.log_groups.get(tier),
    }
}

/// The evidence links for an episode, `(label, url)`, most useful first.
pub fn evidence_links(
    settings: &LinkSettings,
    alert: &WebhookAlert,
    group_key: &str,
    report: Option<&Report>,
    episode_id: &str,
) -> Vec<(String, String)> {
    let mut links = Vec::new();
    let window = report.map(|r| window(settings, alert, r));
    let tier = report.and_then(|r| verdict_tier(settings, &r.verdict));
    // A region names a host: letters, digits and dashes only.
    let region = settings.region.as_deref().filter(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if let (Some(report), Some((from, to)), Some(tier), Some(region)) =
        (report, window, tier.as_deref(), region)
    {
        if let Some(group) = verdict_log_group(settings, &report.verdict, tier) {
            let query = insights_query(&report.runbook);
            links.push((
                "Logs".to_string(),
                insights_url(region, group, &query, from, to),
            ));
        }
    }
    if let Some(base) = &settings.alertmanager_url {
        // The group's labels, as the Silence buttons use (the alert's when unreadable).
        let labels =
            group_matchers(group_key, &alert.labels).unwrap_or_else(|| alert.labels.clone());
        links.push(("Silence".to_string(), silence_url(base, &labels)));
    }
    for dashboard in &settings.dashboards {
        let (from, to) = window.unwrap_or((alert.starts_at, OffsetDateTime::now_utc()));
        let url = dashboard
            .url
            .replace("{tier}", tier.as_deref().unwrap_or("unknown"))
            .replace("{from_ms}", &millis(from).to_string())
            .replace("{to_ms}", &millis(to).to_string())
            .replace("{episode}", episode_id);
        links.push((dashboard.label.clone(), url));
    }
    links
}

fn millis(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}

/// The window the triage looked at: from the lookback before the alert started (at most the
/// longest window before the triage's end) to the triage's end.
fn window(
    settings: &LinkSettings,
    alert: &WebhookAlert,
    report: &Report,
) -> (OffsetDateTime, OffsetDateTime) {
    let to = report.finished_at;
    let from = (alert.starts_at - time::Duration::seconds(settings.lookback_secs as i64))
        .max(to - time::Duration::seconds(settings.max_window_secs as i64))
        .min(to);
    (from, to)
}

/// The Logs Insights query: the runbook's lines of interest, newest first.
pub fn insights_query(runbook: &str) -> String {
    let filter = if runbook.contains("bounce") {
        "| filter @message like /dsn=5|stat=Bounced|DSN: /\n"
    } else if runbook.contains("defer") {
        "| filter @message like /stat=Deferred|dsn=4/\n"
    } else {
        ""
    };
    format!("fields @timestamp, @logStream, @message\n{filter}| sort @timestamp desc\n| limit 200")
}

/// Every byte but ASCII letters and digits as `*xx` (the console's escaping inside
/// `queryDetail`).
fn console_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("*{b:02x}")
            }
        })
        .collect()
}

/// The CloudWatch console's Logs Insights page with the query, log group and absolute window
/// prefilled.
pub fn insights_url(
    region: &str,
    log_group: &str,
    query: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> String {
    let iso = |at: OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:logs-insights$3FqueryDetail$3D~(end~'{}~start~'{}~timeType~'ABSOLUTE~unit~'seconds~editorString~'{}~source~(~'{}))",
        console_escape(&iso(to)),
        console_escape(&iso(from)),
        console_escape(query),
        console_escape(log_group),
    )
}

/// Alertmanager's new-silence page with `labels` (the alert group's) as equality matchers. The
/// labels are only data in the query string (percent-encoded); the page is the configured one.
pub fn silence_url(base: &str, labels: &BTreeMap<String, String>) -> String {
    let matchers: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            format!(
                "{name}=\"{}\"",
                value.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect();
    let filter = format!("{{{}}}", matchers.join(","));
    let encoded: String = filter
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "{}/#/silences/new?filter={encoded}",
        base.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::render::escape::safe_link_url;
    use crate::report::render::fixtures;

    const GROUP_KEY: &str = r#"{}:{alertname="SendmailDeferredSpike", severity="critical"}"#;

    fn settings() -> LinkSettings {
        LinkSettings {
            region: Some("us-east-1".into()),
            log_groups: BTreeMap::from([("smtp-out".into(), "/ecs/cabal-smtp-out".into())]),
            service_logs: BTreeMap::from([(
                "cabal-imap".into(),
                ("imap".into(), "/ecs/cabal-imap".into()),
            )]),
            lookback_secs: 900,
            max_window_secs: 3 * 3600,
            alertmanager_url: Some("https://am.example/".into()),
            dashboards: vec![DashboardLink {
                label: "Queue".into(),
                url: "https://grafana.example/d/q?var-tier={tier}&from={from_ms}&to={to_ms}".into(),
            }],
        }
    }

    #[test]
    fn the_logs_query_the_silence_page_and_a_dashboard() {
        let alert = fixtures::alert();
        let report = fixtures::report(vec![]);
        let links = evidence_links(&settings(), &alert, GROUP_KEY, Some(&report), "ep-1");
        let labels: Vec<&str> = links.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["Logs", "Silence", "Queue"]);
        let logs = &links[0].1;
        assert!(logs.starts_with(
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights$3FqueryDetail$3D~(end~'"
        ), "{logs}");
        assert!(
            logs.contains("~source~(~'*2fecs*2fcabal*2dsmtp*2dout))"),
            "{logs}"
        );
        assert!(logs.contains("stat*3dDeferred"), "{logs}");
        assert!(logs.contains("timeType~'ABSOLUTE"), "{logs}");
        let silence = &links[1].1;
        assert!(
            silence.starts_with("https://am.example/#/silences/new?filter=%7B"),
            "{silence}"
        );
        assert!(
            silence.contains("alertname%3D%22SendmailDeferredSpike%22"),
            "{silence}"
        );
        // The group's labels, not a label the group does not have (as the Silence buttons).
        let mut alert = alert;
        alert
            .labels
            .insert("instance".into(), "10.0.1.7:9100".into());
        let links = evidence_links(&settings(), &alert, GROUP_KEY, Some(&report), "ep-1");
        assert!(!links[1].1.contains("instance"), "{}", links[1].1);
        assert!(links[1].1.contains("severity"), "{}", links[1].1);
        let links = evidence_links(&settings(), &alert, "unreadable", Some(&report), "ep-1");
        assert!(links[1].1.contains("instance"), "{}", links[1].1);
        assert!(links[2]
            .1
            .starts_with("https://grafana.example/d/q?var-tier=smtp-out&from="));
        for (_, url) in &links {
            assert!(safe_link_url(url).is_some(), "{url}");
        }
    }

    #[test]
    fn a_restart_loop_verdict_opens_its_service_log_group_and_names_its_tier() {
        use crate::report::{Action, Confidence, RestartLoopCause};
        let alert = fixtures::alert();
        let mut report = fixtures::report(vec![]);
        let restart = |service: &str| crate::report::verdict::RestartLoopVerdict {
            service: service.into(),
            cause: RestartLoopCause::CrashLoop,
            action: Action::Investigate,
            confidence: Confidence::Medium,
            summary: "s".into(),
            next_command: None,
            exit_codes: vec![1],
            stopped_reason: None,
            image_now: None,
            image_before: None,
        };
        report.verdict = restart("cabal-imap").into();
        let links = evidence_links(&settings(), &alert, GROUP_KEY, Some(&report), "ep-1");
        let labels: Vec<&str> = links.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["Logs", "Silence", "Queue"]);
        assert!(
            links[0].1.contains("*2fecs*2fcabal*2dimap"),
            "{}",
            links[0].1
        );
        assert!(links[2].1.contains("var-tier=imap&"), "{}", links[2].1);
        // A service the configuration does not know gets no logs link.
        report.verdict = restart("cabal-other").into();
        let links = evidence_links(&settings(), &alert, GROUP_KEY, Some(&report), "ep-1");
        assert!(links.iter().all(|(label, _)| label != "Logs"), "{links:?}");
    }

    #[test]
    fn hostile_labels_stay_inside_the_query_string() {
        let mut alert = fixtures::alert();
        alert.labels.insert(
            "instance".into(),
            "x\" onmouseover=\"evil https://evil.example/|<b>".into(),
        );
        let url = silence_url("https://am.example", &alert.labels);
        assert!(url.starts_with("https://am.example/#/silences/new?filter="));
        assert!(safe_link_url(&url).is_some(), "{url}");
        assert!(!url.contains("evil.example/|"));
        // No region or no tier log group: no logs link; no report: only the silence page.
        let report = fixtures::report(vec![]);
        let mut no_region = settings();
        no_region.region = None;
        assert!(
            evidence_links(&no_region, &alert, GROUP_KEY, Some(&report), "ep-1")
                .iter()
                .all(|(label, _)| label != "Logs")
        );
        let links = evidence_links(&settings(), &alert, GROUP_KEY, None, "ep-1");
        assert_eq!(links[0].0, "Silence");
    }
}

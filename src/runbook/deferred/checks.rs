//! The deferred runbook's reading of the follow-up checks (pure, `runbook::followup`): smtp-in's
//! relay to imap failing is named in the `inbound-relay` verdict; smtp-out's 4.4 deferrals with
//! the name lookup failing inside its tasks are DNS (`outbound-dns`), not the NAT, whose failure
//! does not stop the VPC's resolver; imap's spool full, not mounted, or procmail unusable is named
//! in the `imap-local-delivery` verdict. A check that could not run (`unknown`) decides nothing.

use super::super::evidence::TierFacts;
use super::super::followup::{ConnectCheck, DnsCheck, LocalCheck, ProcmailCheck, TcpCheck};
use crate::config::RunbooksConfig;

/// The first 8 characters of a task id, as the ECS console shows it.
fn short(task: &str) -> &str {
    task.get(..8).unwrap_or(task)
}

fn tasks_named(checks: &[&ConnectCheck]) -> String {
    let names: Vec<&str> = checks.iter().map(|c| short(&c.task)).collect();
    format!(
        "task{} {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

fn detail(checks: &[&ConnectCheck]) -> String {
    checks
        .iter()
        .find_map(|c| c.detail.as_deref())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// The tasks whose lookup failed.
pub fn dns_failed(checks: &[ConnectCheck]) -> Vec<&ConnectCheck> {
    checks
        .iter()
        .filter(|c| c.dns == DnsCheck::Failed)
        .collect()
}

/// The tasks whose name resolved but whose TCP/25 connection failed or timed out.
pub fn tcp_failed(checks: &[ConnectCheck]) -> Vec<&ConnectCheck> {
    checks
        .iter()
        .filter(|c| c.dns == DnsCheck::Ok && matches!(c.tcp, TcpCheck::Failed | TcpCheck::Timeout))
        .collect()
}

/// What smtp-in's relay check found, as the `inbound-relay` reason: the lookup or the connection
/// that failed, from which tasks; when every task reached imap, that too. None when no check ran
/// or none answered.
pub fn relay_reason(smtp_in: &TierFacts, t: &RunbooksConfig) -> Option<String> {
    let host = &t.relay_check_host;
    let checks = &smtp_in.relay_checks;
    let dns = dns_failed(checks);
    if !dns.is_empty() {
        return Some(format!(
            "{host} does not resolve inside smtp-in {}{}: smtp-in cannot find imap; check the service discovery record (Cloud Map) and the tasks' /etc/hosts pin",
            tasks_named(&dns),
            detail(&dns)
        ));
    }
    let tcp = tcp_failed(checks);
    if let Some(first) = tcp.first() {
        let how = if tcp.iter().all(|c| c.tcp == TcpCheck::Timeout) {
            format!(
                "does not answer on port 25 within {} s",
                t.connect_check_timeout_secs
            )
        } else {
            format!("refuses port 25{}", detail(&tcp))
        };
        return Some(format!(
            "{host} resolves to {} but {how} from smtp-in {}: imap's sendmail is not listening, or a security group blocks port 25",
            first.address.as_deref().unwrap_or("an address"),
            tasks_named(&tcp)
        ));
    }
    let reached: Vec<&ConnectCheck> = checks
        .iter()
        .filter(|c| c.dns == DnsCheck::Ok && c.tcp == TcpCheck::Ok)
        .collect();
    (!reached.is_empty() && reached.len() == checks.len()).then(|| {
        format!(
            "smtp-in is deferring, yet {host} resolves and accepts port 25 from every smtp-in task now: read the deferred lines' replies (imap answering 4xx) before restarting anything"
        )
    })
}

/// smtp-out's lookup failing inside its tasks: the reason of `outbound-dns`. Only when smtp-out
/// has 4.4 deferrals (what a DNS failure logs) and some task's lookup failed while none
/// succeeded-and-connected (a task that reached the provider shows DNS works).
pub fn outbound_dns_reason(smtp_out: &TierFacts, t: &RunbooksConfig) -> Option<String> {
    let four_four = smtp_out
        .summary
        .dsn_classes
        .get("4.4")
        .copied()
        .unwrap_or(0);
    let failed = dns_failed(&smtp_out.egress_checks);
    if four_four == 0 || failed.is_empty() {
        return None;
    }
    let some_reached = smtp_out.egress_checks.iter().any(|c| c.dns == DnsCheck::Ok);
    if some_reached {
        return Some(format!(
            "{} does not resolve inside smtp-out {}{} while other smtp-out tasks resolve it: those tasks' resolver configuration is broken (their /etc/resolv.conf), not the NAT; replace those tasks",
            t.egress_check_host,
            tasks_named(&failed),
            detail(&failed)
        ));
    }
    Some(format!(
        "{} does not resolve inside smtp-out {}{}: the {four_four} 4.4 deferrals are DNS failures, not the NAT (the VPC's resolver answers without it); check the VPC's DNS resolution (enableDnsSupport, Route 53 Resolver rules) and the tasks' /etc/resolv.conf",
        t.egress_check_host,
        tasks_named(&failed),
        detail(&failed)
    ))
}

/// smtp-out's egress seen from inside its tasks, backing a NAT verdict: the name resolved but
/// TCP/25 failed or timed out.
pub fn egress_confirmation(smtp_out: &TierFacts, t: &RunbooksConfig) -> Option<String> {
    let tcp = tcp_failed(&smtp_out.egress_checks);
    let first = tcp.first()?;
    let how = if tcp.iter().all(|c| c.tcp == TcpCheck::Timeout) {
        "timed out"
    } else {
        "failed"
    };
    Some(format!(
        " Inside smtp-out {}, {} resolves ({}) but TCP/25 to it {how}: outbound connections fail, DNS works.",
        tasks_named(&tcp),
        t.egress_check_host,
        first.address.as_deref().unwrap_or("an address")
    ))
}

/// imap's local-delivery problems the checks found, as phrases (spool full, spool not mounted,
/// procmail missing or not executable), each naming its tasks.
pub fn local_problems(imap: &TierFacts, t: &RunbooksConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let tasks = |pick: &dyn Fn(&LocalCheck) -> bool| -> Vec<&str> {
        imap.local_checks
            .iter()
            .filter(|c| pick(c))
            .map(|c| short(&c.task))
            .collect()
    };
    let full = tasks(&|c| {
        c.spool
            .as_ref()
            .is_some_and(|s| s.used_percent >= t.spool_max_used_percent)
    });
    if let Some(space) = imap.local_checks.iter().find_map(|c| {
        c.spool
            .as_ref()
            .filter(|s| s.used_percent >= t.spool_max_used_percent)
    }) {
        problems.push(format!(
            "the mail spool {} is {}% full ({} MiB free, on {}) in task {}",
            t.spool_path,
            space.used_percent,
            space.available_kib / 1024,
            space.mounted_on,
            full.join(", ")
        ));
    }
    if t.spool_path != "/" {
        let unmounted = tasks(&|c| c.spool.as_ref().is_some_and(|s| s.mounted_on == "/"));
        if !unmounted.is_empty() {
            problems.push(format!(
                "{} is not a mounted filesystem (EFS) in task {}: mail lands on the container's own disk",
                t.spool_path,
                unmounted.join(", ")
            ));
        }
    }
    let missing = tasks(&|c| c.procmail == ProcmailCheck::Missing);
    if !missing.is_empty() {
        problems.push(format!(
            "procmail is missing at {} in task {}",
            t.procmail_path,
            missing.join(", ")
        ));
    }
    let not_exec = tasks(&|c| c.procmail == ProcmailCheck::NotExecutable);
    if !not_exec.is_empty() {
        problems.push(format!(
            "{} is not executable in task {}",
            t.procmail_path,
            not_exec.join(", ")
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::super::super::followup::SpoolSpace;
    use super::*;

    fn check(task: &str, dns: DnsCheck, tcp: TcpCheck, detail: Option<&str>) -> ConnectCheck {
        ConnectCheck {
            task: task.into(),
            dns,
            address: (dns == DnsCheck::Ok).then(|| "10.0.1.23".into()),
            tcp,
            detail: detail.map(str::to_string),
        }
    }

    fn tier(name: &str) -> TierFacts {
        TierFacts {
            tier: name.into(),
            ..TierFacts::default()
        }
    }

    #[test]
    fn relay_failures_are_named() {
        let t = RunbooksConfig::default();
        let mut smtp_in = tier("smtp-in");
        assert_eq!(relay_reason(&smtp_in, &t), None, "no check, nothing said");
        smtp_in.relay_checks = vec![
            check(
                "1a2b3c4d5e6f",
                DnsCheck::Failed,
                TcpCheck::Unknown,
                Some("[Errno -2] Name or service not known"),
            ),
            check("2b3c4d5e6f7a", DnsCheck::Ok, TcpCheck::Ok, None),
        ];
        let reason = relay_reason(&smtp_in, &t).unwrap();
        assert!(
            reason.starts_with(
                "imap.cabal.internal does not resolve inside smtp-in task 1a2b3c4d ([Errno -2]"
            ),
            "{reason}"
        );
        smtp_in.relay_checks = vec![
            check(
                "1a2b3c4d5e6f",
                DnsCheck::Ok,
                TcpCheck::Failed,
                Some("[Errno 111] Connection refused"),
            ),
            check(
                "2b3c4d5e6f7a",
                DnsCheck::Ok,
                TcpCheck::Failed,
                Some("[Errno 111] Connection refused"),
            ),
        ];
        let reason = relay_reason(&smtp_in, &t).unwrap();
        assert!(reason.contains("resolves to 10.0.1.23 but refuses port 25 ([Errno 111] Connection refused) from smtp-in tasks 1a2b3c4d, 2b3c4d5e"), "{reason}");
        smtp_in.relay_checks = vec![check("1a2b3c4d5e6f", DnsCheck::Ok, TcpCheck::Timeout, None)];
        assert!(relay_reason(&smtp_in, &t)
            .unwrap()
            .contains("does not answer on port 25 within 3 s"));
        smtp_in.relay_checks = vec![check("1a2b3c4d5e6f", DnsCheck::Ok, TcpCheck::Ok, None)];
        assert!(relay_reason(&smtp_in, &t)
            .unwrap()
            .contains("accepts port 25 from every smtp-in task"));
        // Unknown decides nothing.
        smtp_in.relay_checks = vec![
            check("1a2b3c4d5e6f", DnsCheck::Ok, TcpCheck::Ok, None),
            check(
                "2b3c4d5e6f7a",
                DnsCheck::Unknown,
                TcpCheck::Unknown,
                Some("timed out"),
            ),
        ];
        assert_eq!(relay_reason(&smtp_in, &t), None);
    }

    #[test]
    fn dns_failing_inside_smtp_out_with_4_4_is_dns() {
        let t = RunbooksConfig::default();
        let mut out = tier("smtp-out");
        out.egress_checks = vec![check(
            "aaaaaaaa1111",
            DnsCheck::Failed,
            TcpCheck::Unknown,
            Some("[Errno -3] Temporary failure in name resolution"),
        )];
        assert_eq!(
            outbound_dns_reason(&out, &t),
            None,
            "no 4.4 deferral, no DNS verdict"
        );
        out.summary.dsn_classes.insert("4.4".into(), 14);
        let reason = outbound_dns_reason(&out, &t).unwrap();
        assert!(
            reason.contains("the 14 4.4 deferrals are DNS failures, not the NAT"),
            "{reason}"
        );
        out.egress_checks
            .push(check("bbbbbbbb2222", DnsCheck::Ok, TcpCheck::Ok, None));
        assert!(outbound_dns_reason(&out, &t)
            .unwrap()
            .contains("while other smtp-out tasks resolve it"));
        out.egress_checks = vec![check("aaaaaaaa1111", DnsCheck::Ok, TcpCheck::Timeout, None)];
        assert_eq!(outbound_dns_reason(&out, &t), None);
        assert!(egress_confirmation(&out, &t)
            .unwrap()
            .contains("TCP/25 to it timed out"));
    }

    #[test]
    fn local_problems_name_spool_and_procmail() {
        let t = RunbooksConfig::default();
        let mut imap = tier("imap");
        let space = |used: u64, mounted: &str| SpoolSpace {
            filesystem: "127.0.0.1:/".into(),
            size_kib: 1000 * 1024,
            available_kib: (100 - used) * 10 * 1024,
            used_percent: used,
            mounted_on: mounted.into(),
        };
        imap.local_checks = vec![LocalCheck {
            task: "9f1c2d3e4a5b".into(),
            spool: Some(space(10, "/home")),
            procmail: ProcmailCheck::Executable,
            detail: None,
        }];
        assert!(local_problems(&imap, &t).is_empty());
        imap.local_checks[0].spool = Some(space(97, "/"));
        imap.local_checks[0].procmail = ProcmailCheck::NotExecutable;
        let problems = local_problems(&imap, &t);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("is 97% full (30 MiB free, on /) in task 9f1c2d3e"));
        assert!(problems[1].contains("not a mounted filesystem"));
        assert!(problems[2].contains("/usr/bin/procmail is not executable"));
        imap.local_checks[0].spool = None;
        imap.local_checks[0].procmail = ProcmailCheck::Unknown;
        assert!(local_problems(&imap, &t).is_empty(), "unknown says nothing");
    }
}

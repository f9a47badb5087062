//! The runbook's follow-up checks, run over ECS Exec beside `mailq` instead of only printed:
//! smtp-out's egress (resolve a big provider's MX host, open TCP/25 to it), smtp-in's relay to
//! imap (resolve `imap.cabal.internal`, open TCP/25), imap's local delivery (the mail spool's
//! free space, procmail executable). This file holds the commands, built only from validated
//! configuration (`config::RunbooksConfig`), and the pure parsers of what they print.
//!
//! Only tools of Cabalmail's images are used (amazonlinux based: python3, coreutils' `df`, the
//! shell's `test`; `dig` is on smtp-in only, so it is not used). A missing tool, an error or an
//! output that is not the expected one gives `unknown`, never a failed triage: the parsers take
//! any text and never panic.

use serde::Serialize;

use crate::config::RunbooksConfig;
use crate::probe::snapshot::ExecRecord;

/// The record names of the follow-up checks in the snapshot (`exec[].probe`).
pub const EGRESS: &str = "egress";
pub const RELAY: &str = "relay";
pub const LOCAL: &str = "local";

/// Longest detail kept from a check's output (an error text), in characters.
const DETAIL_CHARS: usize = 160;

/// The lookup-and-connect check of `host` on TCP/25. python3 prints one `dns=` line (`ok ADDR`,
/// `failed WHY`, `timeout`), then one `tcp=` line (`ok`, `failed WHY`, `timeout`, `unknown`); the
/// lookup runs in a thread joined with the timeout, so a resolver that never answers costs
/// `timeout` seconds, not the resolver's retries. `host` must be a checked host name.
pub fn connect_command(host: &str, timeout_secs: u64) -> String {
    format!(
        "command -v python3 >/dev/null 2>&1 || {{ echo 'check=unavailable python3'; exit 0; }}
python3 -c \"import socket,sys,threading
h,p,t=sys.argv[1],25,float(sys.argv[2])
r=[]
def f():
  try: r.append(socket.getaddrinfo(h,p,socket.AF_INET,socket.SOCK_STREAM))
  except Exception as e: r.append(e)
w=threading.Thread(target=f,daemon=True)
w.start()
w.join(t)
if not r:
  print('dns=timeout'); print('tcp=unknown'); sys.exit(0)
if isinstance(r[0],Exception):
  print('dns=failed',r[0]); print('tcp=unknown'); sys.exit(0)
a=r[0][0][4][0]
print('dns=ok',a)
try:
  socket.create_connection((a,p),t).close(); print('tcp=ok')
except socket.timeout:
  print('tcp=timeout')
except Exception as e:
  print('tcp=failed',e)
\" {host} {timeout_secs}"
    )
}

/// The local-delivery check: `spool=` and `df -P`'s line for the spool, then `procmail=`
/// (`executable`, `not-executable`, `missing`). `spool` and `procmail` must be checked paths.
pub fn local_command(spool: &str, procmail: &str) -> String {
    format!(
        "printf 'spool='; df -P {spool} 2>&1 | tail -n 1
if [ -x {procmail} ]; then echo procmail=executable; elif [ -e {procmail} ]; then echo procmail=not-executable; else echo procmail=missing; fi"
    )
}

/// The commands of the deferred runbook, per tier, from configuration; none when the checks are
/// off.
pub fn commands(t: &RunbooksConfig) -> Vec<(&'static str, &'static str, String)> {
    if !t.followup_checks {
        return Vec::new();
    }
    vec![
        (
            "smtp-out",
            EGRESS,
            connect_command(&t.egress_check_host, t.connect_check_timeout_secs),
        ),
        (
            "smtp-in",
            RELAY,
            connect_command(&t.relay_check_host, t.connect_check_timeout_secs),
        ),
        (
            "imap",
            LOCAL,
            local_command(&t.spool_path, &t.procmail_path),
        ),
    ]
}

/// A name lookup's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsCheck {
    Ok,
    Failed,
    Unknown,
}

/// A TCP connection's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TcpCheck {
    Ok,
    Failed,
    Timeout,
    Unknown,
}

/// One task's lookup-and-connect check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectCheck {
    pub task: String,
    pub dns: DnsCheck,
    /// The address the name resolved to.
    pub address: Option<String>,
    pub tcp: TcpCheck,
    /// Why the lookup or the connection failed, or why the check is unknown (bounded).
    pub detail: Option<String>,
}

/// The procmail binary's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcmailCheck {
    Executable,
    NotExecutable,
    Missing,
    Unknown,
}

/// The spool's filesystem as `df -P` sees it (1024-byte blocks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpoolSpace {
    pub filesystem: String,
    pub size_kib: u64,
    pub available_kib: u64,
    pub used_percent: u64,
    pub mounted_on: String,
}

/// One task's local-delivery check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalCheck {
    pub task: String,
    /// None when unknown.
    pub spool: Option<SpoolSpace>,
    pub procmail: ProcmailCheck,
    pub detail: Option<String>,
}

fn bounded(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The lines of an output, CR LF or LF, trimmed.
fn lines(output: &str) -> impl Iterator<Item = &str> {
    output.split('\n').map(|l| l.trim_end_matches('\r').trim())
}

/// The value of the first `key=` line.
fn first_value<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    lines(output).find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// What `connect_command` printed (any text: never panics).
pub fn parse_connect(task: &str, output: &str) -> ConnectCheck {
    let mut check = ConnectCheck {
        task: task.to_string(),
        dns: DnsCheck::Unknown,
        address: None,
        tcp: TcpCheck::Unknown,
        detail: None,
    };
    if let Some(tool) = first_value(output, "check").and_then(|v| v.strip_prefix("unavailable")) {
        check.detail = Some(bounded(&format!("{} is not in the image", tool.trim())));
        return check;
    }
    match first_value(output, "dns").map(|v| v.split_once(' ').unwrap_or((v, ""))) {
        Some(("ok", address)) if address.trim().parse::<std::net::IpAddr>().is_ok() => {
            check.dns = DnsCheck::Ok;
            check.address = Some(address.trim().to_string());
        }
        Some(("failed", why)) => {
            check.dns = DnsCheck::Failed;
            check.detail = Some(bounded(why));
        }
        Some(("timeout", _)) => {
            check.dns = DnsCheck::Failed;
            check.detail = Some("no answer from the resolver within the check's timeout".into());
        }
        _ => {
            check.detail = Some(bounded(&format!(
                "the check printed no lookup result: {}",
                lines(output).find(|l| !l.is_empty()).unwrap_or("no output")
            )));
            return check;
        }
    }
    if check.dns == DnsCheck::Ok {
        match first_value(output, "tcp").map(|v| v.split_once(' ').unwrap_or((v, ""))) {
            Some(("ok", _)) => check.tcp = TcpCheck::Ok,
            Some(("timeout", _)) => check.tcp = TcpCheck::Timeout,
            Some(("failed", why)) => {
                check.tcp = TcpCheck::Failed;
                check.detail = Some(bounded(why));
            }
            _ => {}
        }
    }
    check
}

/// `df -P`'s data line: filesystem, 1024-blocks, used, available, capacity `N%`, mount point.
fn parse_df(line: &str) -> Option<SpoolSpace> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 6 {
        return None;
    }
    // From the right: the filesystem's name may hold spaces, the mount point is the last field.
    let n = fields.len();
    let mounted_on = fields[n - 1].to_string();
    let used_percent = fields[n - 2].strip_suffix('%')?.parse().ok()?;
    let available_kib = fields[n - 3].parse().ok()?;
    fields[n - 4].parse::<u64>().ok()?;
    let size_kib = fields[n - 5].parse().ok()?;
    Some(SpoolSpace {
        filesystem: bounded(&fields[..n - 5].join(" ")),
        size_kib,
        available_kib,
        used_percent,
        mounted_on: bounded(&mounted_on),
    })
}

/// What `local_command` printed (any text: never panics).
pub fn parse_local(task: &str, output: &str) -> LocalCheck {
    let spool_line = first_value(output, "spool");
    let spool = spool_line.and_then(parse_df);
    let procmail = match first_value(output, "procmail") {
        Some("executable") => ProcmailCheck::Executable,
        Some("not-executable") => ProcmailCheck::NotExecutable,
        Some("missing") => ProcmailCheck::Missing,
        _ => ProcmailCheck::Unknown,
    };
    let detail = match (&spool, spool_line) {
        (None, Some(line)) if !line.is_empty() => Some(bounded(line)),
        (None, _) => Some("df printed no line for the spool".into()),
        _ => None,
    };
    LocalCheck {
        task: task.to_string(),
        spool,
        procmail,
        detail,
    }
}

/// The connect checks of one probe, one per task; a task whose ECS Exec failed is `unknown`
/// with the reason.
pub fn connect_checks(exec: &[ExecRecord], probe: &str) -> Vec<ConnectCheck> {
    exec.iter()
        .filter(|r| r.probe == probe)
        .map(|r| match (&r.error, &r.output) {
            (None, Some(output)) => parse_connect(&r.task, output),
            (error, _) => ConnectCheck {
                task: r.task.clone(),
                dns: DnsCheck::Unknown,
                address: None,
                tcp: TcpCheck::Unknown,
                detail: Some(bounded(error.as_deref().unwrap_or("no output"))),
            },
        })
        .collect()
}

/// The local checks, one per task.
pub fn local_checks(exec: &[ExecRecord]) -> Vec<LocalCheck> {
    exec.iter()
        .filter(|r| r.probe == LOCAL)
        .map(|r| match (&r.error, &r.output) {
            (None, Some(output)) => parse_local(&r.task, output),
            (error, _) => LocalCheck {
                task: r.task.clone(),
                spool: None,
                procmail: ProcmailCheck::Unknown,
                detail: Some(bounded(error.as_deref().unwrap_or("no output"))),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connect_outcomes() {
        let ok = parse_connect("a", "dns=ok 142.250.31.27\r\ntcp=ok\r\n");
        assert_eq!(
            (ok.dns, ok.address.as_deref(), ok.tcp, ok.detail),
            (DnsCheck::Ok, Some("142.250.31.27"), TcpCheck::Ok, None)
        );
        let refused = parse_connect(
            "a",
            "dns=ok 10.0.1.23\ntcp=failed [Errno 111] Connection refused\n",
        );
        assert_eq!(refused.tcp, TcpCheck::Failed);
        assert_eq!(
            refused.detail.as_deref(),
            Some("[Errno 111] Connection refused")
        );
        let slow = parse_connect("a", "dns=ok 10.0.1.23\ntcp=timeout\n");
        assert_eq!(slow.tcp, TcpCheck::Timeout);
        let nxdomain = parse_connect(
            "a",
            "dns=failed [Errno -2] Name or service not known\ntcp=unknown\n",
        );
        assert_eq!(
            (nxdomain.dns, nxdomain.tcp),
            (DnsCheck::Failed, TcpCheck::Unknown)
        );
        assert!(nxdomain.detail.unwrap().contains("not known"));
        let silent = parse_connect("a", "dns=timeout\ntcp=unknown\n");
        assert_eq!(silent.dns, DnsCheck::Failed);
        assert!(silent.detail.unwrap().contains("no answer"));
    }

    #[test]
    fn missing_python_or_odd_output_is_unknown() {
        let missing = parse_connect("a", "check=unavailable python3\n");
        assert_eq!(
            (missing.dns, missing.tcp),
            (DnsCheck::Unknown, TcpCheck::Unknown)
        );
        assert_eq!(
            missing.detail.as_deref(),
            Some("python3 is not in the image")
        );
        let shell = parse_connect("a", "/bin/sh: python3: command not found\n");
        assert_eq!(shell.dns, DnsCheck::Unknown);
        assert!(shell.detail.unwrap().contains("command not found"));
        // An address that is not one is not "ok".
        let forged = parse_connect("a", "dns=ok $(reboot)\ntcp=ok\n");
        assert_eq!(
            (forged.dns, forged.tcp),
            (DnsCheck::Unknown, TcpCheck::Unknown)
        );
        // A tcp line without a lookup says nothing.
        assert_eq!(parse_connect("a", "tcp=ok\n").tcp, TcpCheck::Unknown);
    }

    #[test]
    fn df_lines_of_efs_and_of_a_full_disk() {
        let efs = parse_local(
            "t",
            "spool=127.0.0.1:/ 9007199254739968 1234 9007199254738734 1% /home\nprocmail=executable\n",
        );
        let spool = efs.spool.unwrap();
        assert_eq!(
            (spool.used_percent, spool.mounted_on.as_str()),
            (1, "/home")
        );
        assert_eq!(efs.procmail, ProcmailCheck::Executable);
        let full = parse_local(
            "t",
            "spool=overlay 30832548 30001000 831548 98% /\r\nprocmail=missing\r\n",
        );
        assert_eq!(full.spool.as_ref().unwrap().available_kib, 831_548);
        assert_eq!(full.spool.unwrap().mounted_on, "/");
        assert_eq!(full.procmail, ProcmailCheck::Missing);
        let no_df = parse_local(
            "t",
            "spool=df: /home: No such file or directory\nprocmail=not-executable\n",
        );
        assert!(no_df.spool.is_none());
        assert!(no_df.detail.unwrap().contains("No such file"));
        assert_eq!(no_df.procmail, ProcmailCheck::NotExecutable);
        assert_eq!(parse_local("t", "").procmail, ProcmailCheck::Unknown);
    }

    #[test]
    fn failed_exec_records_are_unknown_checks_with_the_reason() {
        let records = vec![
            ExecRecord {
                task: "a".into(),
                probe: EGRESS.into(),
                output: None,
                exit_status: None,
                error: Some("ECS Exec in task a did not finish".into()),
            },
            ExecRecord {
                task: "a".into(),
                probe: "mailq".into(),
                output: Some("dns=ok 1.2.3.4\n".into()),
                exit_status: Some(0),
                error: None,
            },
            ExecRecord {
                task: "b".into(),
                probe: LOCAL.into(),
                output: None,
                exit_status: None,
                error: Some("not enabled".into()),
            },
        ];
        let checks = connect_checks(&records, EGRESS);
        assert_eq!(checks.len(), 1, "only the egress records");
        assert_eq!(checks[0].dns, DnsCheck::Unknown);
        assert!(checks[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("did not finish"));
        let local = local_checks(&records);
        assert_eq!(
            (local.len(), local[0].procmail),
            (1, ProcmailCheck::Unknown)
        );
    }

    #[test]
    fn oversized_details_are_bounded() {
        let long = format!("dns=failed {}\n", "é".repeat(100_000));
        let check = parse_connect("a", &long);
        assert!(check.detail.unwrap().chars().count() <= DETAIL_CHARS + 1);
        let long = format!("spool={}\n", "x ".repeat(100_000));
        assert!(parse_local("a", &long).detail.unwrap().chars().count() <= DETAIL_CHARS + 1);
    }

    #[test]
    fn commands_come_from_configuration_only() {
        let t = RunbooksConfig::default();
        let commands = commands(&t);
        assert_eq!(
            commands
                .iter()
                .map(|(tier, probe, _)| (*tier, *probe))
                .collect::<Vec<_>>(),
            [("smtp-out", EGRESS), ("smtp-in", RELAY), ("imap", LOCAL)]
        );
        assert!(commands[0].2.ends_with(" gmail-smtp-in.l.google.com 3"));
        assert!(commands[1].2.ends_with(" imap.cabal.internal 3"));
        assert!(commands[2].2.contains("df -P /home"));
        assert!(commands[2].2.contains("[ -x /usr/bin/procmail ]"));
        let off = RunbooksConfig {
            followup_checks: false,
            ..RunbooksConfig::default()
        };
        assert!(super::commands(&off).is_empty());
    }

    /// The command really runs where python3 is (this machine): localhost resolves, port 25 is
    /// closed or open, a name under `.invalid` never resolves.
    #[test]
    fn the_connect_command_runs_and_parses() {
        if std::process::Command::new("python3")
            .arg("-V")
            .output()
            .is_err()
        {
            return;
        }
        let run = |host: &str| {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(connect_command(host, 2))
                .output()
                .unwrap();
            parse_connect("t", &String::from_utf8_lossy(&out.stdout))
        };
        let local = run("localhost");
        assert_eq!(local.dns, DnsCheck::Ok, "{local:?}");
        assert_ne!(local.tcp, TcpCheck::Unknown, "{local:?}");
        let invalid = run("no-such-host.invalid");
        assert_eq!(invalid.dns, DnsCheck::Failed, "{invalid:?}");
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(local_command("/", "/bin/sh"))
            .output()
            .unwrap();
        let local = parse_local("t", &String::from_utf8_lossy(&out.stdout));
        assert_eq!(local.procmail, ProcmailCheck::Executable, "{local:?}");
        assert_eq!(local.spool.map(|s| s.mounted_on), Some("/".to_string()));
    }

    proptest! {
        #[test]
        fn hostile_check_output_never_panics(text in "\\PC{0,300}", key in "(dns|tcp|spool|procmail|check)=") {
            let _ = parse_connect("t", &text);
            let _ = parse_local("t", &text);
            let keyed = format!("{key}{text}\n{key}{text}");
            let check = parse_connect("t", &keyed);
            prop_assert!(check.detail.map_or(0, |d| d.chars().count()) <= 400);
            let _ = parse_local("t", &keyed);
        }
    }
}

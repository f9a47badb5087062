//! Command outputs captured before a run, for the fake agent to answer instead of spawning a
//! process per session (`AgentScript::prepared`). The latency benchmark uses it: with dozens of
//! sessions on a 2-core machine, a process per session (`/bin/sh` and its command) costs more CPU
//! than the service under test spends, and that CPU lands in the measured wall time. The frames,
//! acks and the rest of the protocol stay real; only where the bytes come from changes.
//!
//! Every entry is produced by running the command for real, once, with the session's
//! environment (`capture`). The service wraps each command with a sentinel that carries a fresh
//! nonce per session (`cabal_triage::aws::exec::output::Sentinel`), so entries are keyed by the
//! command with its nonce masked, and the answer carries the asking session's nonce.

use std::collections::HashMap;

use cabal_triage::aws::exec::output::Sentinel;

/// The nonce that stands for any session's nonce in keys and captured outputs.
const MASK: &str = "0000000000000000";
/// Length of the service's sentinel nonce.
const NONCE_LEN: usize = 16;

type Environment = Vec<(String, String)>;

/// (command with its sentinel nonce masked, sorted environment) -> the pty bytes it printed.
#[derive(Debug, Default)]
pub struct PreparedOutputs {
    outputs: HashMap<(String, Environment), Vec<u8>>,
}

impl PreparedOutputs {
    /// Runs every command once, for real (as a session would: split like the agent does, no
    /// shell, the given environment), and keeps what it printed. Commands may carry a sentinel
    /// with any nonce.
    pub async fn capture(runs: Vec<(String, Environment)>) -> PreparedOutputs {
        let mut outputs = HashMap::new();
        for (command, env) in runs {
            let (masked, _) = mask_nonce(&command);
            let output = super::run_command(masked.clone(), env.clone()).await;
            outputs.insert((masked, sorted(env)), output);
        }
        PreparedOutputs { outputs }
    }

    /// The output of `command` in `env`, with the asking session's nonce; `None` when the
    /// command was not captured (the agent then runs it).
    pub fn answer(&self, command: &str, env: &[(String, String)]) -> Option<Vec<u8>> {
        let (masked, nonce) = mask_nonce(command);
        let output = self.outputs.get(&(masked, sorted(env.to_vec())))?;
        Some(match nonce {
            Some(nonce) => replace(output, marker(MASK).as_bytes(), marker(&nonce).as_bytes()),
            None => output.clone(),
        })
    }
}

fn marker(nonce: &str) -> String {
    Sentinel::with_nonce(nonce).marker().to_string()
}

fn sorted(mut env: Environment) -> Environment {
    env.sort();
    env
}

/// `command` with every sentinel nonce replaced by `MASK`, and the (last) nonce found.
fn mask_nonce(command: &str) -> (String, Option<String>) {
    let prefix = marker("");
    let mut masked = String::with_capacity(command.len());
    let mut nonce = None;
    let mut rest = command;
    while let Some(at) = rest.find(&prefix) {
        let after = at + prefix.len();
        masked.push_str(&rest[..after]);
        let candidate = rest[after..].get(..NONCE_LEN);
        match candidate {
            Some(n) if n.bytes().all(|b| b.is_ascii_hexdigit()) => {
                masked.push_str(MASK);
                nonce = Some(n.to_string());
                rest = &rest[after + NONCE_LEN..];
            }
            _ => rest = &rest[after..],
        }
    }
    masked.push_str(rest);
    (masked, nonce)
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

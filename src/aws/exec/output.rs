//! From the pty's bytes to what callers want: the exit status, learned from a sentinel line the
//! wrapped command prints (the agent sends no exit code), the raw
//! output without that line, and a text form with CR LF normalised and terminal control
//! sequences stripped.

const MARKER_PREFIX: &str = "__ECSX_RC_";

/// A per-call sentinel: `__ECSX_RC_<nonce>=<status>` printed after the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentinel {
    marker: String,
}

impl Sentinel {
    /// A sentinel with a fresh random nonce.
    pub fn random() -> Self {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        Sentinel::with_nonce(&nonce[..16])
    }

    /// A sentinel with a given nonce (tests).
    pub fn with_nonce(nonce: &str) -> Self {
        Sentinel {
            marker: format!("{MARKER_PREFIX}{nonce}"),
        }
    }

    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The command ECS runs: `script` run by `/bin/sh -c` in a subshell (so an `exit` in it
    /// cannot skip the sentinel), then the sentinel line carrying `$?`. The agent splits the
    /// string with shell-like rules and runs it without a shell, so the whole shell text is one
    /// single-quoted word; a `'` inside is written `'\''`.
    pub fn wrap(&self, script: &str) -> String {
        let body = format!("(\n{script}\n); printf \"\\n{}=%s\\n\" \"$?\"", self.marker);
        format!("/bin/sh -c '{}'", body.replace('\'', r"'\''"))
    }

    /// The exit status from the last sentinel line in `bytes` (the end of the output).
    pub fn exit_status(&self, bytes: &[u8]) -> Option<i32> {
        let needle = format!("{}=", self.marker);
        let at = rfind(bytes, needle.as_bytes())?;
        let rest = &bytes[at + needle.len()..];
        let digits_end = rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'-'))
            .unwrap_or(rest.len());
        if digits_end == 0
            || !rest[digits_end..]
                .first()
                .is_some_and(|b| *b == b'\r' || *b == b'\n')
        {
            return None;
        }
        std::str::from_utf8(&rest[..digits_end]).ok()?.parse().ok()
    }

    /// The command's own output: `bytes` up to the line break that `printf` put before the
    /// sentinel. A sentinel cut by the output cap is removed too.
    pub fn strip<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        if let Some(at) = rfind(bytes, self.marker.as_bytes()) {
            return trim_one_line_break(&bytes[..at]);
        }
        // The cap may have cut the sentinel line: drop a trailing prefix of it.
        let line = format!("\n{}", self.marker);
        let pattern = line.as_bytes();
        for len in (2..pattern.len()).rev() {
            if bytes.ends_with(&pattern[..len]) {
                return trim_one_line_break(&bytes[..bytes.len() - len + 1]);
            }
        }
        bytes
    }
}

fn trim_one_line_break(bytes: &[u8]) -> &[u8] {
    if let Some(rest) = bytes.strip_suffix(b"\r\n") {
        rest
    } else if let Some(rest) = bytes.strip_suffix(b"\n") {
        rest
    } else {
        bytes
    }
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .rev()
        .find(|&i| &haystack[i..i + needle.len()] == needle)
}

/// Text for people and parsers: terminal control sequences stripped, invalid UTF-8 replaced,
/// CR LF (and a stray CR) turned into LF.
pub fn normalise(raw: &[u8]) -> String {
    let stripped = strip_ansi_escapes::strip(raw);
    let text = String::from_utf8_lossy(&stripped);
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_in_one_single_quoted_word_with_quotes_escaped() {
        let sentinel = Sentinel::with_nonce("ab12");
        assert_eq!(
            sentinel.wrap("mailq | tail -1"),
            "/bin/sh -c '(\nmailq | tail -1\n); printf \"\\n__ECSX_RC_ab12=%s\\n\" \"$?\"'"
        );
        assert_eq!(
            sentinel.wrap("echo 'a b'"),
            "/bin/sh -c '(\necho '\\''a b'\\''\n); printf \"\\n__ECSX_RC_ab12=%s\\n\" \"$?\"'"
        );
    }

    #[test]
    fn finds_status_and_strips_the_sentinel_line() {
        let s = Sentinel::with_nonce("n1");
        let raw = b"Total requests: 42\r\n\r\n__ECSX_RC_n1=0\r\n";
        assert_eq!(s.exit_status(raw), Some(0));
        assert_eq!(s.strip(raw), b"Total requests: 42\r\n");
        let raw = b"no newline\r\n__ECSX_RC_n1=127\r\n";
        assert_eq!(s.exit_status(raw), Some(127));
        assert_eq!(s.strip(raw), b"no newline");
    }

    #[test]
    fn other_nonces_and_partial_lines_are_not_a_status() {
        let s = Sentinel::with_nonce("n1");
        assert_eq!(s.exit_status(b"__ECSX_RC_n2=0\r\n"), None);
        assert_eq!(s.exit_status(b"__ECSX_RC_n1=0"), None, "line not finished");
        assert_eq!(s.exit_status(b"__ECSX_RC_n1=\r\n"), None);
        assert_eq!(s.exit_status(b"__ECSX_RC_n1=x1\r\n"), None);
        assert_eq!(s.exit_status(b""), None);
    }

    #[test]
    fn strips_a_sentinel_cut_by_the_cap() {
        let s = Sentinel::with_nonce("n1");
        assert_eq!(s.strip(b"data\r\n\r\n__ECSX_R"), b"data\r\n");
        assert_eq!(s.strip(b"data\r\n\r\n"), b"data\r\n\r\n");
        assert_eq!(s.strip(b"plain"), b"plain");
    }

    #[test]
    fn normalises_line_ends_and_strips_escape_sequences() {
        assert_eq!(
            normalise(b"\x1b[1;31mred\x1b[0m line\r\nnext\r\n"),
            "red line\nnext\n"
        );
        assert_eq!(normalise(b"caf\xc3\xa9\r\n\xff"), "caf\u{e9}\n\u{fffd}");
    }
}

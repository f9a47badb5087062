//! Reads input line by line, fast and with bounded memory: large reads into one reused buffer,
//! lines found with memchr and handed out as slices of it (no copy, no allocation per line).
//! A line longer than the cap is cut at the cap and the rest of it skipped, so a hostile input
//! without newlines cannot exhaust memory. Bytes are handed out as read: decoding (lossy UTF-8)
//! is the caller's choice.

use std::io::{self, Read};

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// A read failure and the 1-based number of the line being read when it happened.
#[derive(Debug)]
pub struct ReadFailure {
    pub line: u64,
    pub error: io::Error,
}

/// Why the line loop stopped early.
#[derive(Debug)]
pub enum LinesError<E> {
    Read(ReadFailure),
    /// The callback's own error.
    Callback(E),
}

/// Calls `each(line_number, bytes)` for every line (without its `\n`; a final line without a
/// newline is included). Returns the number of lines.
pub fn for_each_line<R: Read, E>(
    mut input: R,
    max_line: usize,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<u64, LinesError<E>> {
    let max_line = max_line.max(1);
    let mut buf = vec![0u8; CHUNK.min(max_line.saturating_add(1)).max(4096)];
    let (mut start, mut end) = (0usize, 0usize);
    let mut line_no = 0u64;
    // Skipping the rest of an over-long line whose head was already handed out.
    let mut skipping = false;
    loop {
        while let Some(pos) = memchr::memchr(b'\n', &buf[start..end]) {
            line_no += 1;
            if !skipping {
                each(line_no, &buf[start..start + pos]).map_err(LinesError::Callback)?;
            }
            skipping = false;
            start += pos + 1;
        }
        if skipping {
            start = end;
        } else if end - start >= max_line {
            each(line_no + 1, &buf[start..start + max_line]).map_err(LinesError::Callback)?;
            skipping = true;
            start = end;
        }
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        if end == buf.len() {
            let grown = (buf.len() * 2).min(max_line.saturating_add(CHUNK));
            buf.resize(grown.max(buf.len() + 1), 0);
        }
        let read = loop {
            match input.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(LinesError::Read(ReadFailure {
                        line: line_no + 1,
                        error,
                    }))
                }
            }
        };
        if read == 0 {
            if end > 0 {
                line_no += 1;
                if !skipping {
                    each(line_no, &buf[..end]).map_err(LinesError::Callback)?;
                }
            }
            return Ok(line_no);
        }
        end += read;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<(u64, Vec<u8>)> {
        let mut lines = Vec::new();
        for_each_line::<_, ()>(input, max, |n, l| {
            lines.push((n, l.to_vec()));
            Ok(())
        })
        .unwrap();
        lines
    }

    #[test]
    fn splits_lines_and_keeps_a_last_partial_one() {
        let lines = collect(b"a\nbb\n\nccc", 100);
        assert_eq!(
            lines,
            vec![
                (1, b"a".to_vec()),
                (2, b"bb".to_vec()),
                (3, b"".to_vec()),
                (4, b"ccc".to_vec())
            ]
        );
        assert!(collect(b"", 100).is_empty());
    }

    #[test]
    fn caps_long_lines_and_keeps_counting() {
        let mut input = vec![b'x'; 3 * CHUNK + 17];
        input.extend_from_slice(b"\nshort\n");
        input.extend(vec![b'y'; 50]);
        let lines = collect(&input, 1000);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].0, 1);
        assert_eq!(lines[0].1.len(), 1000);
        assert_eq!(lines[1], (2, b"short".to_vec()));
        assert_eq!(lines[2].1.len(), 50);
        // A line of exactly a chunk plus more, below the cap, stays whole.
        let mut input = vec![b'z'; CHUNK + 5];
        input.push(b'\n');
        let lines = collect(&input, 4 * CHUNK);
        assert_eq!(lines[0].1.len(), CHUNK + 5);
    }

    #[test]
    fn read_errors_name_the_line() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                self.0 -= 1;
                buf[..4].copy_from_slice(b"ab\nc");
                Ok(4)
            }
        }
        match for_each_line::<_, ()>(Failing(2), 100, |_, _| Ok(())) {
            Err(LinesError::Read(failure)) => assert_eq!(failure.line, 3),
            other => panic!("{other:?}"),
        }
    }
}

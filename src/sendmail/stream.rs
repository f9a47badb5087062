//! A sendmail log turned into `parse maillog` records (`docs/contracts.md`, "`parse maillog`
//! output") on every core, output in input order. It reads and writes the streams it is given
//! (the CLI hands it a file or standard input, and standard output); it opens nothing itself.
//! One thread reads the input in large
//! blocks straight into batch buffers and cuts each batch after its last whole line (the
//! partial line moves to the next batch; a line longer than the cap is cut there and the rest
//! of it skipped, so memory stays bounded). Batches are dealt round-robin to the workers. A
//! worker finds its batch's lines, learns the number of its first line from the batch before
//! (each worker passes the number on as soon as it has counted its lines, before classifying
//! them), classifies the lines and writes their JSON lines into an output buffer. The calling
//! thread collects the outputs in batch order (worker 0, 1, ..., N-1, 0, ...) and writes them, so
//! the output is byte for byte what a single thread writes. Channels are bounded, so memory
//! stays at a few batches per worker whatever the input's size; buffers go back to where they
//! came from instead of being freed. A write failure (the reader of our output went away)
//! closes the channels and every thread stops; a read failure ends the input after the last
//! whole line, and is reported with its line number once everything before it is written.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use super::classify::{classify_line_with_to, Delivery};
use super::json::push_record;
use super::ProviderTable;
use crate::report::redact::redact_addresses;

/// Longest line read by default; the rest of a longer line is skipped (sendmail's own lines are
/// under 2 KiB).
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// Bytes of input per batch: large enough that channel traffic is noise, small enough that
/// every worker gets work early and memory stays small.
const BATCH_BYTES: usize = 1 << 20;
/// Batches waiting in each channel.
const QUEUE: usize = 2;
/// Most workers used, whatever the machine.
const MAX_WORKERS: usize = 8;

/// A read failure and the 1-based number of the line being read when it happened.
#[derive(Debug)]
pub struct ReadFailure {
    pub line: u64,
    pub error: io::Error,
}

/// Whole lines, each ending in `\n`: `data[..len]` (the rest of `data` is spare room, kept
/// initialised so that reads can go straight into it).
struct Batch {
    data: Vec<u8>,
    len: usize,
    /// The number of the batch's first line, from the batch before.
    first_line: Receiver<u64>,
    /// The number of the line after this batch, for the batch after.
    next_first: SyncSender<u64>,
}

/// Why `write_deliveries` stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The input failed at this line (1-based); everything before it was written.
    #[error("line {line}: cannot read: {error}")]
    Read { line: u64, error: io::Error },
    /// The output could not be written (a reader that went away is `BrokenPipe`).
    #[error("cannot write the output: {0}")]
    Write(io::Error),
}

/// The number of workers to use: one per core, at most `MAX_WORKERS` (8).
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_WORKERS)
}

/// Writes one JSON line per delivery line of `input` to `out`, in input order, classifying on
/// `workers` threads. `max_line` caps a line's length (the rest of a longer line is skipped).
pub fn write_deliveries<R: Read + Send, W: Write>(
    input: R,
    out: &mut W,
    providers: &ProviderTable,
    workers: usize,
    max_line: usize,
    show_local_parts: bool,
) -> Result<(), StreamError> {
    let settings = Settings {
        max_line,
        show_local_parts,
    };
    write_in_batches(input, out, providers, workers, settings, BATCH_BYTES)
}

/// How each line is treated.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// A line's length cap (the rest of a longer line is skipped).
    max_line: usize,
    /// Print `reply` and `relay` as logged; else their addresses go through
    /// `report::redact` (`parse maillog --show-local-parts`).
    show_local_parts: bool,
}

/// [`write_deliveries`] with the batch size as a parameter (the tests use tiny batches).
fn write_in_batches<R: Read + Send, W: Write>(
    input: R,
    out: &mut W,
    providers: &ProviderTable,
    workers: usize,
    settings: Settings,
    batch_bytes: usize,
) -> Result<(), StreamError> {
    let workers = workers.max(1);
    let batch_bytes = batch_bytes.max(16);
    let max_line = settings.max_line.max(1);
    std::thread::scope(|scope| {
        // Input buffers travel reader -> worker -> reader; output buffers worker -> writer ->
        // worker.
        let (spent_tx, spent_rx) = mpsc::channel::<Vec<u8>>();
        let mut to_workers = Vec::with_capacity(workers);
        let mut from_workers = Vec::with_capacity(workers);
        let mut recycle = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (batch_tx, batch_rx) = mpsc::sync_channel::<Batch>(QUEUE);
            let (done_tx, done_rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
            let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
            let spent_tx = spent_tx.clone();
            let worker = Worker {
                batches: batch_rx,
                done: done_tx,
                recycled: recycle_rx,
                spent: spent_tx,
                providers,
                max_line,
                show_local_parts: settings.show_local_parts,
            };
            scope.spawn(move || worker.run());
            to_workers.push(batch_tx);
            from_workers.push(done_rx);
            recycle.push(recycle_tx);
        }
        drop(spent_tx);
        let reader = scope.spawn(move || {
            Reader {
                input,
                max_line,
                batch_bytes,
                workers: to_workers,
                turn: 0,
                spent: spent_rx,
            }
            .run()
        });

        let mut written = Ok(());
        for turn in (0..workers).cycle() {
            let Ok(output) = from_workers[turn].recv() else {
                break;
            };
            if let Err(e) = out.write_all(&output) {
                written = Err(StreamError::Write(e));
                break;
            }
            // The worker may have stopped already; the buffer is then simply freed.
            let _ = recycle[turn].send(output);
        }
        // Closing the outputs stops the workers, whose end stops the reader.
        drop(from_workers);
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written?;
        read.map_err(|failure| StreamError::Read {
            line: failure.line,
            error: failure.error,
        })
    })
}

/// The reading thread's state.
struct Reader<R> {
    input: R,
    max_line: usize,
    batch_bytes: usize,
    workers: Vec<SyncSender<Batch>>,
    turn: usize,
    spent: Receiver<Vec<u8>>,
}

/// A batch being filled: `data[..complete]` are whole lines, `data[complete..len]` the start of
/// the next line.
struct Filling {
    data: Vec<u8>,
    len: usize,
    complete: usize,
}

impl<R: Read> Reader<R> {
    /// Reads to the end, a read failure, or until the workers are gone (a write failed; the
    /// writer reports that).
    fn run(mut self) -> Result<(), ReadFailure> {
        let (first_tx, mut first_rx) = mpsc::sync_channel(1);
        // The chain starts at line 1; the channel has room for it.
        let _ = first_tx.send(1);
        let mut batch = self.fresh();
        // Dropping the rest of an over-long line whose head was cut off and kept.
        let mut skipping = false;
        loop {
            if batch.len == batch.data.len() {
                // A single line fills the buffer (it is still below the cap): make room.
                let grown = batch.data.len() * 2;
                batch.data.resize(grown, 0);
            }
            let start = batch.len;
            let read = match self.input.read(&mut batch.data[start..]) {
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // Everything up to the last whole line is still classified; the line being
                    // read is the one after them (or the over-long one being skipped).
                    batch.len = batch.complete;
                    if !self.send(batch, &mut first_rx) {
                        return Ok(());
                    }
                    // No number when the workers stopped early: the writer reports why.
                    let Ok(next_line) = first_rx.recv() else {
                        return Ok(());
                    };
                    let line = if skipping { next_line - 1 } else { next_line };
                    return Err(ReadFailure { line, error });
                }
            };
            if read == 0 {
                if batch.len > batch.complete {
                    // A last line without a newline.
                    self.end_line(&mut batch);
                }
                if batch.len > 0 {
                    self.send(batch, &mut first_rx);
                }
                return Ok(());
            }
            batch.len += read;
            if skipping {
                match memchr::memchr(b'\n', &batch.data[start..batch.len]) {
                    Some(newline) => {
                        // The over-long line ends here: keep what follows its newline.
                        batch
                            .data
                            .copy_within(start + newline + 1..batch.len, start);
                        batch.len -= newline + 1;
                        skipping = false;
                    }
                    None => {
                        batch.len = start;
                        continue;
                    }
                }
            }
            // Only the new bytes can hold a newline after the last whole line.
            if let Some(newline) = memchr::memrchr(b'\n', &batch.data[start..batch.len]) {
                batch.complete = start + newline + 1;
            }
            if batch.len - batch.complete >= self.max_line {
                // The line being read is too long: keep its head as a line, skip the rest.
                batch.len = batch.complete + self.max_line;
                self.end_line(&mut batch);
                skipping = true;
            }
            if batch.complete >= self.batch_bytes {
                let mut next = self.fresh();
                let partial = batch.complete..batch.len;
                let partial_len = partial.len();
                if next.data.len() < partial_len * 2 {
                    next.data.resize(partial_len * 2, 0);
                }
                next.data[..partial_len].copy_from_slice(&batch.data[partial]);
                next.len = partial_len;
                batch.len = batch.complete;
                if !self.send(batch, &mut first_rx) {
                    return Ok(());
                }
                batch = next;
            }
        }
    }

    /// Ends the partial line at `complete..len` with a newline, making it whole.
    fn end_line(&self, batch: &mut Filling) {
        if batch.len == batch.data.len() {
            batch.data.push(0);
        }
        batch.data[batch.len] = b'\n';
        batch.len += 1;
        batch.complete = batch.len;
    }

    /// An empty buffer: a used one when one came back, else a new one.
    fn fresh(&self) -> Filling {
        let data = self
            .spent
            .try_recv()
            .unwrap_or_else(|_| vec![0; self.batch_bytes + (self.batch_bytes >> 2)]);
        Filling {
            data,
            len: 0,
            complete: 0,
        }
    }

    /// Sends `data[..len]` to the next worker, linking it into the line-number chain; false
    /// when the workers are gone.
    fn send(&mut self, batch: Filling, first_rx: &mut Receiver<u64>) -> bool {
        let (next_tx, next_rx) = mpsc::sync_channel(1);
        let first_line = std::mem::replace(first_rx, next_rx);
        let batch = Batch {
            data: batch.data,
            len: batch.len,
            first_line,
            next_first: next_tx,
        };
        let sent = self.workers[self.turn].send(batch).is_ok();
        self.turn = (self.turn + 1) % self.workers.len();
        sent
    }
}

/// A worker's channels and settings.
struct Worker<'p> {
    batches: Receiver<Batch>,
    done: SyncSender<Vec<u8>>,
    recycled: Receiver<Vec<u8>>,
    spent: Sender<Vec<u8>>,
    providers: &'p ProviderTable,
    max_line: usize,
    show_local_parts: bool,
}

impl Worker<'_> {
    /// Classifies each batch's lines into an output buffer for the writer.
    fn run(self) {
        let finder = memchr::memmem::Finder::new(b"to=");
        let mut ends: Vec<usize> = Vec::new();
        for batch in &self.batches {
            let bytes = &batch.data[..batch.len];
            ends.clear();
            ends.extend(memchr::memchr_iter(b'\n', bytes));
            // Pass the numbering on before the slow part, so the next batch can start.
            let Ok(first_line) = batch.first_line.recv() else {
                return;
            };
            let _ = batch.next_first.send(first_line + ends.len() as u64);
            let mut output = self.recycled.try_recv().unwrap_or_default();
            output.clear();
            // The whole batch checked as UTF-8 in one pass (the usual case, and much faster
            // over one long buffer than line by line); its lines are then borrowed from it.
            let text = std::str::from_utf8(bytes).ok();
            let mut start = 0;
            for (line_no, &end) in (first_line..).zip(&ends) {
                let line = &bytes[start..end];
                let line = &line[..line.len().min(self.max_line)];
                // `None` when the batch is not UTF-8, or the length cap cut a character.
                let line_text = text.and_then(|text| text.get(start..start + line.len()));
                classify_into(
                    line_no,
                    line,
                    line_text,
                    &finder,
                    self.providers,
                    self.show_local_parts,
                    &mut output,
                );
                start = end + 1;
            }
            if self.done.send(output).is_err() {
                return;
            }
            let _ = self.spent.send(batch.data);
        }
    }
}

/// One line: a JSON line into `output` when it is a delivery line. `text` is the line as text
/// when the caller already knows it to be UTF-8.
fn classify_into(
    line_no: u64,
    bytes: &[u8],
    text: Option<&str>,
    finder: &memchr::memmem::Finder<'_>,
    providers: &ProviderTable,
    show_local_parts: bool,
    output: &mut Vec<u8>,
) {
    // Most lines of a mail log are not delivery lines: skip them before decoding.
    if finder.find(bytes).is_none() {
        return;
    }
    // Valid UTF-8 (the usual case) is borrowed; anything else is decoded lossily, per line.
    let text = match text.map(Ok).unwrap_or_else(|| std::str::from_utf8(bytes)) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let Some(delivery) = classify_line_with_to(&text, providers) else {
        return;
    };
    if show_local_parts {
        push_record(output, line_no, &delivery);
        return;
    }
    // The remote reply quotes recipients ("550 5.1.1 <jane@example.com>: unknown"), and a relay
    // can be logged as `user@host`.
    let reply = delivery.reply.map(redact_addresses);
    let relay = delivery.relay.map(redact_addresses);
    let shown = Delivery {
        reply: reply.as_deref(),
        relay: relay.as_deref(),
        ..delivery
    };
    push_record(output, line_no, &shown);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn redacting(max_line: usize) -> Settings {
        Settings {
            max_line,
            show_local_parts: false,
        }
    }

    /// The reference: the definition of the input's lines (split at `\n`, a last line without
    /// one included, each cut at `max_line`), classified in order on one thread.
    fn sequential(input: &[u8], max_line: usize) -> Vec<u8> {
        let table = ProviderTable::builtin();
        let finder = memchr::memmem::Finder::new(b"to=");
        let mut out = Vec::new();
        let mut lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
        if input.ends_with(b"\n") || input.is_empty() {
            lines.pop();
        }
        for (n, line) in (1..).zip(lines) {
            let line = &line[..line.len().min(max_line)];
            classify_into(n, line, None, &finder, &table, false, &mut out);
        }
        out
    }

    /// Hands out the input in reads of the given sizes, in turn.
    struct Chunked<'a> {
        left: &'a [u8],
        sizes: Vec<usize>,
        turn: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.turn % self.sizes.len()].max(1);
            self.turn += 1;
            let n = size.min(buf.len()).min(self.left.len());
            buf[..n].copy_from_slice(&self.left[..n]);
            self.left = &self.left[n..];
            Ok(n)
        }
    }

    fn parallel(input: &[u8], workers: usize, max_line: usize) -> Vec<u8> {
        batched(input, &[1 << 16], workers, max_line, BATCH_BYTES)
    }

    fn batched(
        input: &[u8],
        reads: &[usize],
        workers: usize,
        max_line: usize,
        batch_bytes: usize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let table = ProviderTable::builtin();
        let chunked = Chunked {
            left: input,
            sizes: reads.to_vec(),
            turn: 0,
        };
        let outcome = write_in_batches(
            chunked,
            &mut out,
            &table,
            workers,
            redacting(max_line),
            batch_bytes,
        );
        assert!(outcome.is_ok(), "{outcome:?}");
        out
    }

    fn corpus() -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/maillog");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    #[test]
    fn output_keeps_input_order_across_many_batches() {
        let corpus = corpus();
        let mut input = Vec::new();
        while input.len() < 8 * BATCH_BYTES {
            input.extend_from_slice(&corpus);
        }
        let expected = sequential(&input, 1 << 20);
        let text = String::from_utf8(expected.clone()).unwrap();
        let numbers: Vec<u64> = text
            .lines()
            .map(|l| {
                let record: serde_json::Value = serde_json::from_str(l).unwrap();
                record["line"].as_u64().unwrap()
            })
            .collect();
        assert!(numbers.len() > 20_000);
        assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        for workers in [1, 2, 3, 8] {
            assert!(parallel(&input, workers, 1 << 20) == expected, "{workers}");
        }
        // Tiny batches and odd read sizes: thousands of batches, lines split across reads.
        let small = &input[..300_000];
        let expected = sequential(small, 1 << 20);
        for (workers, batch_bytes) in [(1, 16), (2, 700), (3, 4096), (4, 100_000)] {
            let out = batched(
                small,
                &[1, 7, 4096, 333, 65536],
                workers,
                1 << 20,
                batch_bytes,
            );
            assert!(out == expected, "{workers} {batch_bytes}");
        }
    }

    #[test]
    fn long_lines_invalid_utf8_and_a_missing_last_newline() {
        let mut input = Vec::new();
        input.extend_from_slice(b"Q0000001: to=<a@gmail.com>, stat=Sent \xff\xfe\n");
        input.extend(std::iter::repeat_n(b'x', 3 * BATCH_BYTES));
        input.extend_from_slice(b", to=<b@c.example>, stat=Deferred\n\n\n");
        input.extend_from_slice(b"Q0000002: to=<b@c.example>, stat=Sent (");
        input.extend(std::iter::repeat_n(b'y', 2 * BATCH_BYTES));
        input.extend_from_slice(b")\nQ0000003: to=<d@e.example>, dsn=5.1.1, stat=User unknown");
        for max_line in [100, BATCH_BYTES, 4 * BATCH_BYTES] {
            let expected = sequential(&input, max_line);
            assert!(!expected.is_empty());
            for workers in [1, 2, 5] {
                let out = parallel(&input, workers, max_line);
                assert!(out == expected, "{max_line} {workers}");
            }
        }
        assert!(parallel(b"", 2, 100).is_empty());
        let one = b"Q0000001: to=<a@b.example>, stat=Sent";
        assert_eq!(parallel(one, 3, 100), sequential(one, 100));
        // The cap cuts the delivery line's tail: the reply is shortened, the line kept.
        let cut = sequential(one, 30);
        assert!(String::from_utf8(cut).unwrap().contains("\"line\":1"));
    }

    fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"Nov 28 20:14:03 h sm-mta[1]: Q0000001: to=<a@gmail.com>, delay=00:00:02, mailer=esmtp, pri=1, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 x".to_vec()),
            Just(b"Q0000002: to=<b@c.example>, dsn=5.1.1, stat=User unknown".to_vec()),
            Just(b"dovecot: imap-login: user=<a>".to_vec()),
            prop::collection::vec(any::<u8>(), 0..120),
            (0usize..400).prop_map(|n| {
                let mut line = b"Q0000003: to=<x@y.example>, stat=Sent (".to_vec();
                line.extend(std::iter::repeat_n(b'z', n));
                line
            }),
            // Valid UTF-8 with characters of two to four bytes, which a length cap can cut.
            (0usize..60).prop_map(|n| {
                let mut line = "Q0000004: to=<é@日本.example>, stat=Deferred: 451 ".as_bytes().to_vec();
                for _ in 0..n {
                    line.extend_from_slice("é日🚀".as_bytes());
                }
                line
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_input_any_reads_any_batches_match_one_thread(
            lines in prop::collection::vec(line_strategy(), 0..40),
            final_newline: bool,
            reads in prop::collection::vec(1usize..300, 1..5),
            workers in 1usize..4,
            max_line in 1usize..200,
            batch_bytes in 16usize..2000,
        ) {
            let mut input = lines.join(&b'\n');
            if final_newline {
                input.push(b'\n');
            }
            let expected = sequential(&input, max_line);
            let out = batched(&input, &reads, workers, max_line, batch_bytes);
            prop_assert!(out == expected);
        }
    }

    /// Hands out `data`, then fails.
    struct Failing {
        left: Vec<u8>,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.left.len()).min(4096);
            buf[..n].copy_from_slice(&self.left[..n]);
            self.left.drain(..n);
            Ok(n)
        }
    }

    fn failing_run(input: Vec<u8>, max_line: usize) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        let table = ProviderTable::builtin();
        let failing = Failing { left: input };
        match write_in_batches(failing, &mut out, &table, 2, redacting(max_line), 4096) {
            Err(StreamError::Read { line, error }) => {
                assert_eq!(error.to_string(), "disk on fire");
                (out, line)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_read_failure_names_its_line_after_the_lines_before_it() {
        let line = b"Q0000001: to=<a@gmail.com>, dsn=4.7.1, stat=Deferred: 451 4.7.1 later\n";
        let mut input = Vec::new();
        let mut lines = 0;
        while input.len() < 3 * 4096 {
            input.extend_from_slice(line);
            lines += 1;
        }
        // Failing in the middle of a line: that line is the one named.
        let mut partial = input.clone();
        partial.extend_from_slice(b"Q0000002: to=<partial");
        let (out, failed_at) = failing_run(partial, 1 << 20);
        assert_eq!(failed_at, lines + 1);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count() as u64, lines);
        // Failing right after a newline: the next line.
        let (_, failed_at) = failing_run(input.clone(), 1 << 20);
        assert_eq!(failed_at, lines + 1);
        // Failing while skipping the rest of an over-long line: that line.
        let mut long = input.clone();
        long.extend(std::iter::repeat_n(b'x', 10_000));
        let (out, failed_at) = failing_run(long, 500);
        assert_eq!(failed_at, lines + 1);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count() as u64, lines);
        // Failing at once.
        let (out, failed_at) = failing_run(Vec::new(), 100);
        assert_eq!((out.len(), failed_at), (0, 1));
    }

    #[test]
    fn a_write_failure_stops_every_thread() {
        struct Closed(usize);
        impl Write for Closed {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                self.0 -= 1;
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        /// An endless input: only the write failure can end the run.
        struct Endless(Vec<u8>, usize);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 = (self.1 + n) % self.0.len();
                Ok(n)
            }
        }
        let table = ProviderTable::builtin();
        for workers in [1, 2, 3] {
            let endless = Endless(corpus(), 0);
            let outcome =
                write_deliveries(endless, &mut Closed(3), &table, workers, 1 << 20, false);
            match outcome {
                Err(StreamError::Write(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn writes_one_json_line_per_delivery_line() {
        let input = b"Nov 28 20:14:03 h sm-mta[1]: Q0000001: to=<a@gmail.com>, delay=00:00:02, mailer=esmtp, pri=1, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 x\nNov 28 20:14:04 h dovecot: imap-login: user=<a>\nQ0000002: to=<b@\xfe.example>, stat=Sent \xff\n\xffQ0000003: to=<c@d.example>, stat=Sent\n";
        let mut out = Vec::new();
        let table = ProviderTable::builtin();
        assert!(write_deliveries(&input[..], &mut out, &table, 2, MAX_LINE_BYTES, false).is_ok());
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["line"], 1);
        assert_eq!(lines[0]["provider"], "google");
        // Field order follows the contract.
        let first = text.lines().next().unwrap();
        let positions: Vec<usize> = [
            "line",
            "queue_id",
            "status",
            "dsn",
            "dsn_class",
            "category",
            "recipient_domain",
            "provider",
            "relay",
            "reply",
            "reply_dsn",
        ]
        .iter()
        .map(|k| first.find(&format!("\"{k}\":")).unwrap())
        .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{first}");
        assert_eq!(lines[1]["line"], 3);
        assert_eq!(lines[1]["status"], "sent");
        assert_eq!(lines[1]["recipient_domain"], "\u{fffd}.example");
        // Garbage before the queue id: not a sendmail message.
        assert!(!text.contains("Q0000003"));
    }

    #[test]
    fn reply_and_relay_are_redacted_unless_local_parts_are_shown() {
        let input = b"Q0000001: to=<jane.doe@example.com>, relay=postmaster@mx.example.com. [192.0.2.1], dsn=5.1.1, reply=550 5.1.1 <jane.doe@example.com>: Recipient address rejected, stat=User unknown\n";
        let table = ProviderTable::builtin();
        let run = |show: bool| {
            let mut out = Vec::new();
            write_deliveries(&input[..], &mut out, &table, 2, MAX_LINE_BYTES, show).unwrap();
            let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
            line
        };
        let redacted = run(false);
        assert_eq!(
            redacted["reply"],
            "550 5.1.1 <j***@example.com>: Recipient address rejected"
        );
        assert_eq!(redacted["relay"], "p***@mx.example.com");
        assert_eq!(redacted["recipient_domain"], "example.com");
        assert_eq!(redacted["reply_dsn"], "5.1.1");
        let shown = run(true);
        assert_eq!(
            shown["reply"],
            "550 5.1.1 <jane.doe@example.com>: Recipient address rejected"
        );
        assert_eq!(shown["relay"], "postmaster@mx.example.com");
    }
}

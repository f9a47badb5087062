//! The service's own logs (`tracing`), human-readable or JSON. Secrets are never logged: they are
//! `Secret` values, which print as `***`.
//!
//! In the human format every field goes through the one sanitizer's log escaping and the one
//! redactor (`report::sanitize`, `report::redact`): a `groupKey` with a newline and ESC in it is
//! printed as `\n` and `\u{1b}`, never as a forged log line or a terminal escape, and addresses
//! show `j***@example.com` unless `privacy.show_local_parts` is set. The JSON format gets the
//! same treatment value by value: each line the formatter writes is parsed back and every string
//! in it redacted and escaped before it is written (redacting the JSON text itself could break
//! its quoting: `"\"john doe\"@example.com"`).

use std::fmt;
use std::io::Write;

use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::report::redact::redact;
use crate::report::sanitize::escape_controls;

/// Installs the global subscriber. `RUST_LOG` wins over `log.level` when set.
pub fn init(config: &LogConfig, show_local_parts: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = match config.format {
        LogFormat::Json => json(std::io::stderr, show_local_parts)
            .with_env_filter(filter)
            .try_init(),
        LogFormat::Human => human(std::io::stderr, show_local_parts)
            .with_env_filter(filter)
            .try_init(),
    };
}

/// The human-format subscriber builder writing to `writer` (the tests give it a buffer).
pub fn human<W>(
    writer: W,
    show_local_parts: bool,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    Inert<DefaultFields>,
    tracing_subscriber::fmt::format::Format,
    tracing_subscriber::filter::LevelFilter,
    W,
>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(writer)
        .fmt_fields(Inert::<DefaultFields>::new(show_local_parts))
}

/// The JSON-format subscriber builder writing to `writer` through [`InertJson`].
pub fn json<W>(
    writer: W,
    show_local_parts: bool,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    tracing_subscriber::filter::LevelFilter,
    InertJson<W>,
>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(InertJson {
            inner: writer,
            show_local_parts,
        })
        .json()
        .flatten_event(true)
}

/// A writer of JSON log lines that makes every string value in them inert, as [`Inert`] does
/// for the human format: addresses redacted, controls and invisible characters escaped.
pub struct InertJson<W> {
    inner: W,
    show_local_parts: bool,
}

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for InertJson<W> {
    type Writer = InertJsonWriter<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        InertJsonWriter {
            inner: self.inner.make_writer(),
            show_local_parts: self.show_local_parts,
        }
    }
}

/// One event's writer (the formatter writes an event's whole line at once).
pub struct InertJsonWriter<W> {
    inner: W,
    show_local_parts: bool,
}

impl<W: Write> Write for InertJsonWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut out = Vec::with_capacity(bytes.len() + 16);
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            let (body, newline) = match line.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (line, false),
            };
            match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(mut value) => {
                    make_inert(&mut value, self.show_local_parts);
                    serde_json::to_writer(&mut out, &value).map_err(std::io::Error::from)?;
                }
                // Not JSON (nothing the formatter writes): escaped like a human-format field.
                Err(_) => {
                    let text = String::from_utf8_lossy(body);
                    let redacted = redact(&text, self.show_local_parts);
                    out.extend_from_slice(escape_controls(&redacted).as_bytes());
                }
            }
            if newline {
                out.push(b'\n');
            }
        }
        self.inner.write_all(&out)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Every string of `value` (object keys stay: they are field names of the code) redacted and
/// escaped.
fn make_inert(value: &mut serde_json::Value, show_local_parts: bool) {
    match value {
        serde_json::Value::String(text) => {
            let redacted = redact(text, show_local_parts);
            let inert = escape_controls(&redacted);
            if inert != text.as_str() {
                *text = inert.into_owned();
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                make_inert(item, show_local_parts);
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values_mut() {
                make_inert(item, show_local_parts);
            }
        }
        _ => {}
    }
}

/// Formats fields with `F`, then makes the result inert: addresses redacted, control
/// characters escaped.
pub struct Inert<F> {
    inner: F,
    show_local_parts: bool,
}

impl<F: Default> Inert<F> {
    pub fn new(show_local_parts: bool) -> Self {
        Inert {
            inner: F::default(),
            show_local_parts,
        }
    }
}

impl<'writer, F> FormatFields<'writer> for Inert<F>
where
    F: for<'a> FormatFields<'a> + 'static,
{
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut buffer = String::new();
        self.inner.format_fields(Writer::new(&mut buffer), fields)?;
        let redacted = redact(&buffer, self.show_local_parts);
        writer.write_str(&escape_controls(&redacted))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn a_field_cannot_forge_a_line_or_send_escapes_and_addresses_are_redacted() {
        let buffer = Buffer::default();
        let subscriber = human(buffer.clone(), false).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, || {
            let group_key = "{}:{a=\"b\"}\n2026-12-07T00:00:00Z  INFO forged line\u{1b}[2J\u{202e}";
            tracing::info!(group_key = %group_key, from = "jane.doe@example.com", "alerts recorded");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        assert!(
            text.contains("\\n2026-12-07") && text.contains("\\u{1b}[2J"),
            "{text}"
        );
        assert!(
            text.contains("j***@example.com") && !text.contains("jane.doe"),
            "{text}"
        );
    }

    #[test]
    fn json_lines_carry_redacted_and_escaped_values_and_stay_json() {
        for show in [false, true] {
            let buffer = Buffer::default();
            let subscriber = json(buffer.clone(), show).finish();
            tracing::subscriber::with_default(subscriber, || {
                let group_key =
                    "{}:{a=\"b\"}\n{\"level\":\"INFO\",\"fields\":\"forged\"}\u{1b}[2J\u{202e}\u{200b}";
                tracing::info!(
                    group_key = %group_key,
                    from = "\"john doe\"@example.com",
                    rcpt = "jane.doe@example.com",
                    "alerts recorded for jürgen@bücher.de"
                );
            });
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            assert_eq!(text.lines().count(), 1, "{text}");
            let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
            let group_key = line["group_key"].as_str().unwrap();
            assert!(
                !group_key.contains('\u{1b}')
                    && !group_key.contains('\u{202e}')
                    && !group_key.contains('\u{200b}')
                    && !group_key.contains('\n'),
                "{group_key:?}"
            );
            assert!(group_key.contains("\\u{1b}[2J"), "{group_key}");
            if show {
                assert_eq!(line["rcpt"], "jane.doe@example.com");
                assert_eq!(line["from"], "\"john doe\"@example.com");
            } else {
                assert_eq!(line["rcpt"], "j***@example.com", "{text}");
                assert!(!text.contains("john doe"), "{text}");
                assert!(!text.contains("jürgen"), "{text}");
                assert!(line["message"].as_str().unwrap().contains("j***@bücher.de"));
            }
        }
    }
}

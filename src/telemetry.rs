//! The service's own logs (`tracing`), human-readable or JSON. Secrets are never logged: they are
//! `Secret` values, which print as `***`.
//!
//! In the human format every field goes through the one sanitizer's log escaping and the one
//! redactor (`report::sanitize`, `report::redact`): a `groupKey` with a newline and ESC in it is
//! printed as `\n` and `\u{1b}`, never as a forged log line or a terminal escape, and addresses
//! show `j***@example.com` unless `privacy.show_local_parts` is set. The JSON format escapes
//! controls by itself (redacting inside JSON text could break its quoting, so it is left to the
//! fields: the texts it logs are the service's own messages and identifiers).

use std::fmt;

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
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
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
}

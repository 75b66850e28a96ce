//! The server's log on stderr: plain text for a person at a terminal, JSON lines for a
//! collector (when asked, or when stderr is not a terminal). Every event is one line in both:
//! a field holding line breaks (a slow statement's SQL, which sqlx logs as it is written) has
//! its whitespace folded, so no line of the log ever continues on the next.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How the log is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Text on a terminal, JSON lines otherwise.
    #[default]
    Auto,
    Text,
    Json,
}

/// Installs the log: `filter` in tracing's syntax, on stderr.
pub fn init(filter: &str, format: Format) {
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    let json = match format {
        Format::Json => true,
        Format::Text => false,
        Format::Auto => !terminal,
    };
    if json {
        builder
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines)
            .init();
    } else {
        // Colours only for a person at a terminal; a file or a pipe gets plain text.
        builder.with_ansi(terminal).fmt_fields(OneLineFields).init();
    }
}

/// `value` on one line: runs of whitespace that hold a line break become one space.
fn one_line(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\n', '\r']) {
        value
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .into()
    } else {
        value.into()
    }
}

/// Fields of the text format: `message key=value …`, each value on the line.
struct OneLineFields;

impl<'w> FormatFields<'w> for OneLineFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = TextFields {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct TextFields<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl TextFields<'_> {
    fn write(&mut self, field: &Field, value: &str, quote: bool) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let sep = if self.empty { "" } else { " " };
        self.empty = false;
        let value = one_line(value);
        self.result = match (field.name(), quote) {
            ("message", _) => write!(self.writer, "{sep}{value}"),
            // Quoted only where a reader (or a parser splitting on spaces) needs it.
            (name, true) if value.is_empty() || value.contains([' ', '"', '=', '\\']) => {
                write!(self.writer, "{sep}{name}={value:?}")
            }
            (name, _) => write!(self.writer, "{sep}{name}={value}"),
        };
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value, true);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"), false);
    }
}

/// One JSON object per event: `timestamp`, `level`, `target`, `message`, then the event's
/// fields and those of the spans it happened in (a request's `request_id`), flat, numbers and
/// booleans as such.
struct JsonLines;

/// A span's fields as JSON objects, one a line (one per `record`), for `JsonLines` to merge.
struct JsonSpanFields;

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = JsonFields::default();
        fields.record(&mut visitor);
        let object: serde_json::Map<String, serde_json::Value> = visitor
            .values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        write!(writer, "{}", serde_json::Value::Object(object))
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if !current.fields.is_empty() {
            current.fields.push('\n');
        }
        self.format_fields(current.as_writer(), fields)
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut outer = Vec::new();
        for span in ctx.event_scope().into_iter().flat_map(|s| s.from_root()) {
            if let Some(f) = span.extensions().get::<FormattedFields<N>>() {
                for object in f.fields.lines() {
                    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(object) {
                        outer.extend(o);
                    }
                }
            }
        }
        let meta = event.metadata();
        let target = fields.log_target.as_deref().unwrap_or(meta.target());
        let mut line = String::with_capacity(256);
        let mut put = |key: &str, value: &serde_json::Value| {
            line.push(if line.is_empty() { '{' } else { ',' });
            line.push_str(&serde_json::Value::from(key).to_string());
            line.push(':');
            line.push_str(&value.to_string());
        };
        put("timestamp", &timestamp.into());
        put("level", &meta.level().as_str().into());
        put("target", &target.into());
        for (key, value) in &fields.values {
            put(key, value);
        }
        for (key, value) in &outer {
            if !fields.values.iter().any(|(k, _)| k == key) {
                put(key, value);
            }
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

#[derive(Default)]
struct JsonFields {
    values: Vec<(&'static str, serde_json::Value)>,
    /// The original target of an event that came through the `log` crate.
    log_target: Option<String>,
}

impl JsonFields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        match field.name() {
            "log.target" => self.log_target = value.as_str().map(str::to_string),
            name if name.starts_with("log.") => {}
            name => self.values.push((name, value)),
        }
    }
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, one_line(value).into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, one_line(&format!("{value:?}")).into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; those few are written as text.
        self.put(
            field,
            serde_json::Number::from_f64(value)
                .map_or_else(|| value.to_string().into(), serde_json::Value::Number),
        );
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, one_line(&value.to_string()).into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What a subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The slow-statement warning as sqlx writes it: the statement as written, line breaks
    /// and indentation included.
    fn slow_statement() {
        tracing::warn!(
            target: "sqlx::query",
            summary = "select id from …",
            db.statement = "\n\nSELECT id, size\n      FROM blobs\n     WHERE digest = ?\n",
            rows_returned = 1u64,
            elapsed_secs = 1.25,
            "slow statement: execution time exceeded alert threshold"
        );
    }

    #[test]
    fn a_slow_statement_is_one_json_line_with_its_fields() {
        let out = Buffer::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, slow_statement);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["target"], "sqlx::query");
        assert_eq!(
            v["message"],
            "slow statement: execution time exceeded alert threshold"
        );
        assert_eq!(
            v["db.statement"],
            "SELECT id, size FROM blobs WHERE digest = ?"
        );
        assert_eq!(v["rows_returned"], 1);
        assert_eq!(v["elapsed_secs"], 1.25);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
    }

    #[test]
    fn a_line_inside_a_request_names_its_id() {
        let out = Buffer::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::error_span!("request", request_id = "abc-1");
            let _in = span.enter();
            tracing::error!(error = "disk on fire", "internal error");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["request_id"], "abc-1", "{v}");
        assert_eq!(v["error"], "disk on fire", "{v}");
        assert_eq!(v["message"], "internal error", "{v}");
    }

    #[test]
    fn a_slow_statement_is_one_text_line() {
        let out = Buffer::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(OneLineFields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, slow_statement);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(
                "slow statement: execution time exceeded alert threshold summary=\"select id from …\" \
                 db.statement=\"SELECT id, size FROM blobs WHERE digest = ?\" rows_returned=1"
            ),
            "{text}"
        );
    }

    #[test]
    fn line_breaks_fold_into_one_line_and_other_text_is_kept() {
        assert_eq!(
            one_line("\n\nSELECT id\n      FROM blobs\n"),
            "SELECT id FROM blobs"
        );
        assert_eq!(one_line("two  spaces kept"), "two  spaces kept");
    }
}

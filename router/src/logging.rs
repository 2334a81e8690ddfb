//! The router's log: `tracing` events with fields, written to stderr one line each.
//!
//! Events that ops act on carry fields named the same everywhere: `listener`, `peer`,
//! `control_id` (HL7 MSH-10, or the ITK tracking id), `endpoint`, `rule`, `reason`, `position`,
//! `shard`, beside a short message. Human lines (`--log-format human`, the default) read
//! `TIME LEVEL message key=value …`; JSON lines (`--log-format json`) are one object each, the
//! fields at the top level. `RUST_LOG` chooses what is written (`info` by default); lines from
//! crates that use `log` (rustls) go through the same filter and format.
//!
//! Message content never reaches the log unless `--log-bodies` was given: then refusal and
//! delivery-failure events carry a `body` field ([`body`]: escaped, at most [`BODY_MOST`]
//! bytes of the message). The switch is process-wide and set once before any shard starts,
//! so an event reads it with one relaxed load, and only when it is written.
//!
//! When stderr is the journal (systemd sets `JOURNAL_STREAM` to its device and inode), lines
//! carry no time (the journal stamps them) and start with the sd-daemon priority (`<3>` error,
//! `<4>` warning, `<6>` info, `<7>` debug), so warnings show as warnings in `journalctl`.
//!
//! Events are written on the thread that raises them, by a blocking write to stderr. That is
//! how it was with `env_logger` too: shards raise events on refusals, failures and changes,
//! never per message, and those that could come in floods (refusals per peer, delivery
//! failures per endpoint) are rate-limited where they are raised. A disabled event (a `debug!`
//! under the default filter) costs a load of the global maximum level; its fields are not
//! evaluated.
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Event, Level, Subscriber};

use crate::ingress::refusals::ControlId;
use crate::pipeline::{Accepted, MessageKind};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event: time, level, message, then `key=value` fields.
    #[default]
    Human,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// Most bytes of a message a `body` field holds.
pub const BODY_MOST: usize = 4096;

static BODIES: AtomicBool = AtomicBool::new(false);

/// Whether events may carry message bodies (`--log-bodies`).
pub fn bodies() -> bool {
    BODIES.load(Ordering::Relaxed)
}

/// A message's bytes for an event's `body` field: `None` (the field is left out) unless
/// `--log-bodies` was given. Escaped so that one event stays one line and a sender cannot write
/// terminal controls into the log: segment separators show as `\r`.
pub fn body(bytes: &[u8]) -> Option<String> {
    bodies().then(|| Body(bytes).to_string())
}

/// A message's id as event fields, `(control_id, tracking_id)`: MSH-10 for HL7v2, the
/// tracking id for ITK; escaped as in refusals (a sender must not write lines into the log).
pub fn message_ids(message: &Accepted) -> (Option<String>, Option<String>) {
    let id = Some(ControlId(message.control_id()).to_string());
    match message.kind {
        MessageKind::Hl7v2 => (id, None),
        MessageKind::Itk => (None, id),
    }
}

/// `bytes` escaped, cut at [`BODY_MOST`] with a note of how much was left out. Printable
/// ASCII stays as it is (quotes too: HL7 names hold apostrophes); `\` is doubled, CR, LF and
/// tab are `\r`, `\n`, `\t`, and every other byte is `\xNN`.
pub struct Body<'a>(pub &'a [u8]);

impl fmt::Display for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..BODY_MOST).unwrap_or(self.0);
        for &b in shown {
            match b {
                b'\\' => f.write_str("\\\\")?,
                b'\r' => f.write_str("\\r")?,
                b'\n' => f.write_str("\\n")?,
                b'\t' => f.write_str("\\t")?,
                b' '..=b'~' => f.write_char(char::from(b))?,
                b => write!(f, "\\x{b:02x}")?,
            }
        }
        if shown.len() < self.0.len() {
            write!(f, "… ({} bytes in all)", self.0.len())?;
        }
        Ok(())
    }
}

/// Installs the log for this process: the format, the `RUST_LOG` filter (default `info`),
/// whether bodies may be logged, and the bridge for `log` records. Later calls do nothing.
pub fn init(format: LogFormat, log_bodies: bool) {
    BODIES.store(log_bodies, Ordering::Relaxed);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // `try_init` also routes `log` records into tracing (the `tracing-log` feature). It fails
    // only when a subscriber is already installed, as in tests that start two routers.
    let _ = match (format, stderr_is_journal()) {
        (LogFormat::Json, _) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        (LogFormat::Human, false) => builder.with_target(false).try_init(),
        (LogFormat::Human, true) => builder
            // The journal stamps the time, and shows the level from the prefix.
            .event_format(Journal(
                format::Format::default()
                    .without_time()
                    .with_level(false)
                    .with_target(false),
            ))
            .try_init(),
    };
}

/// Whether stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` names its
/// device and inode (`sd_journal_stream_fd(3)`); a child that inherited the variable but
/// writes elsewhere must not prefix its lines.
fn stderr_is_journal() -> bool {
    let Some(named) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    named.to_str() == Some(&format!("{}:{}", stat.st_dev, stat.st_ino))
}

/// The sd-daemon priority prefix for a level (`sd-daemon(3)`).
fn priority(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        _ => "<7>",
    }
}

/// The human format behind an sd-daemon priority prefix.
struct Journal<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str(priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_escaped_to_one_line_and_bounded() {
        assert_eq!(
            Body(b"MSH|^~\\&|A\rPID|1||O'NEIL^Siobh\xc3\xa1n\r").to_string(),
            "MSH|^~\\\\&|A\\rPID|1||O'NEIL^Siobh\\xc3\\xa1n\\r"
        );
        assert_eq!(Body(b"\x1b[31m\n\xff").to_string(), "\\x1b[31m\\n\\xff");
        let long = vec![b'x'; BODY_MOST + 10];
        let shown = Body(&long).to_string();
        assert!(shown.starts_with(&"x".repeat(BODY_MOST)), "{shown}");
        assert!(shown.ends_with(&format!("… ({} bytes in all)", BODY_MOST + 10)));
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        let got: Vec<&str> = [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG]
            .iter()
            .map(priority)
            .collect();
        assert_eq!(got, ["<3>", "<4>", "<6>", "<7>"]);
    }
}

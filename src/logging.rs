//! A minimal logger for terminals and the journal alike: no timestamps,
//! no module paths, one line per message on stderr. When stderr is the
//! journal (`JOURNAL_STREAM`), lines carry `<N>` priority prefixes that
//! journald understands (sd-daemon(3)).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct Logger {
    journal: bool,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let (prio, word) = match r.level() {
            Level::Error => (3, "error: "),
            Level::Warn => (4, "warning: "),
            Level::Info => (6, ""),
            Level::Debug => (7, "debug: "),
            Level::Trace => (7, "trace: "),
        };
        // Messages quote process names, paths and input lines that other
        // users control: a newline or an escape sequence in them must not
        // forge a log line or reach a terminal.
        let message = r.args().to_string();
        let text = escape_controls(&message);
        // A closed stderr (a hook's reader gone) must not panic, as
        // eprintln! would: the hook still finishes and exits 0.
        let mut err = std::io::stderr().lock();
        let _ = if self.journal {
            writeln!(err, "<{prio}>{word}{text}")
        } else {
            writeln!(err, "restart-stale: {word}{text}")
        };
    }

    fn flush(&self) {}
}

/// Installs the logger; `verbose` is the `-v` count.
pub fn init(verbose: u8) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let level = match verbose {
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    if log::set_boxed_logger(Box::new(Logger { journal })).is_ok() {
        log::set_max_level(level);
    }
}

/// `text` with every control character written as `\u{..}`; borrowed
/// when there is none, as almost always.
pub(crate) fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(escape_controls("plain text"), "plain text");
        assert_eq!(
            escape_controls("evil\nrestart-stale: fake\x1b[2J"),
            "evil\\u{a}restart-stale: fake\\u{1b}[2J"
        );
    }
}

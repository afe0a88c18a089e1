//! A minimal logger for terminals and the journal alike: no timestamps,
//! no module paths, one line per message on stderr. When stderr is the
//! journal (`JOURNAL_STREAM`), lines carry `<N>` priority prefixes that
//! journald understands (sd-daemon(3)).

use log::{Level, LevelFilter, Log, Metadata, Record};

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
        if self.journal {
            eprintln!("<{prio}>{word}{}", r.args());
        } else {
            eprintln!("restart-stale: {word}{}", r.args());
        }
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

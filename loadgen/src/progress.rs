//! Live progress on standard error, the one way every command shows it: nothing at all with
//! `--quiet`; on a terminal one line rewritten in place; elsewhere (a log file, CI) whole lines,
//! at most one per [`Progress::every`], so a log is never a wall of carriage returns.
use std::io::Write as _;
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    tty: bool,
    /// Least time between two lines when standard error is not a terminal.
    every: Duration,
    last: Option<Instant>,
    /// A line is on the terminal without its newline.
    open: bool,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress::with(enabled, crate::sys::stderr_is_tty())
    }

    fn with(enabled: bool, tty: bool) -> Progress {
        Progress {
            enabled,
            tty,
            every: Duration::from_secs(5),
            last: None,
            open: false,
        }
    }

    /// Shows `line` as the current state (dropped when too soon after the last on a log).
    pub fn show(&mut self, line: &str) {
        if let Some(text) = self.render(line, Instant::now()) {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }

    /// Shows `line` as a result that stays (a finished step): always a whole line.
    pub fn result(&mut self, line: &str) {
        if !self.enabled {
            return;
        }
        self.finish();
        eprintln!("{line}");
    }

    /// Ends the line being rewritten on a terminal, if any.
    pub fn finish(&mut self) {
        if self.open {
            eprintln!();
            self.open = false;
        }
    }

    /// What to write for `line` at `now`, if anything.
    fn render(&mut self, line: &str, now: Instant) -> Option<String> {
        if !self.enabled {
            return None;
        }
        if self.tty {
            self.open = true;
            return Some(format!("\r\x1b[2K{line}"));
        }
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(format!("{line}\n"))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_shows_nothing() {
        let mut p = Progress::with(false, true);
        assert_eq!(p.render("x", Instant::now()), None);
    }

    #[test]
    fn a_terminal_gets_the_line_rewritten_in_place() {
        let mut p = Progress::with(true, true);
        let now = Instant::now();
        assert_eq!(p.render("a", now).as_deref(), Some("\r\x1b[2Ka"));
        assert_eq!(p.render("b", now).as_deref(), Some("\r\x1b[2Kb"));
        assert!(p.open);
    }

    #[test]
    fn a_log_gets_whole_lines_no_carriage_returns_and_not_too_often() {
        let mut p = Progress::with(true, false);
        let t0 = Instant::now();
        assert_eq!(p.render("a", t0).as_deref(), Some("a\n"));
        assert_eq!(p.render("b", t0 + Duration::from_secs(3)), None);
        assert_eq!(
            p.render("c", t0 + Duration::from_secs(5)).as_deref(),
            Some("c\n")
        );
        assert!(!p.open);
    }
}

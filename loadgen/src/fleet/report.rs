//! The report stream an endpoint process writes to whoever connects to its control address:
//! one text line per event, so that the driver (in another process) can join arrivals with its
//! own intended send times on the shared monotonic clock.
//!
//! - `a <arrival_ns> <outcome letter> <id>`: a message arrived (its MSH-10 or ITK tracking id).
//! - `s <accepted> <open> <established> <down> <flaps>`: connection counts, endpoints down now
//!   and down events so far, a few times a second.
//!
//! The other way, a watcher may send commands, one a line ([`Command`]): `drop` closes every
//! accepted connection at once (see `conns::State::watcher_event`); `down <index>` takes
//! endpoint `index` down and `up <index>` brings it back (see `flap`). A process ignores the
//! indices of endpoints it does not serve, so a command may go to every process.

/// One parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Arrival {
        at_ns: u64,
        outcome: u8,
        id: &'a [u8],
    },
    Stats {
        accepted: u64,
        open: u64,
        established: u64,
        /// Endpoints down now.
        down: u64,
        /// Down events so far.
        flaps: u64,
    },
}

/// What a watcher may tell a fleet process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Close every accepted connection.
    Drop,
    /// Endpoint `index` (global) closes its listener and its connections.
    Down(usize),
    /// Endpoint `index` listens again.
    Up(usize),
}

impl Command {
    /// The command's line, newline included.
    pub fn line(self) -> String {
        match self {
            Command::Drop => "drop\n".to_string(),
            Command::Down(i) => format!("down {i}\n"),
            Command::Up(i) => format!("up {i}\n"),
        }
    }

    /// Parses one line (without its newline); `None` for anything else.
    pub fn parse(line: &[u8]) -> Option<Command> {
        let line = std::str::from_utf8(line).ok()?.trim();
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        match verb {
            "drop" if arg.is_empty() => Some(Command::Drop),
            "down" => Some(Command::Down(arg.trim().parse().ok()?)),
            "up" => Some(Command::Up(arg.trim().parse().ok()?)),
            _ => None,
        }
    }
}

pub fn write_arrival(out: &mut Vec<u8>, at_ns: u64, outcome: u8, id: &[u8]) {
    use std::io::Write;
    let _ = write!(out, "a {at_ns} ");
    out.push(outcome);
    out.push(b' ');
    // Identifiers with spaces or newlines are not ours; keep the line well-formed.
    out.extend(id.iter().map(|&b| if b <= b' ' { b'_' } else { b }));
    out.push(b'\n');
}

pub fn write_stats(
    out: &mut Vec<u8>,
    accepted: u64,
    open: u64,
    established: u64,
    down: u64,
    flaps: u64,
) {
    use std::io::Write;
    let _ = writeln!(out, "s {accepted} {open} {established} {down} {flaps}");
}

fn num(b: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(b?).ok()?.parse().ok()
}

/// Parses one line (without its newline).
pub fn parse(line: &[u8]) -> Option<Line<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    match parts.next()? {
        b"a" => {
            let at_ns = num(parts.next())?;
            let outcome = *parts.next()?.first()?;
            let id = parts.next().unwrap_or_default();
            Some(Line::Arrival { at_ns, outcome, id })
        }
        b"s" => {
            let mut fields = parts.flat_map(|p| p.split(|&b| b == b' '));
            Some(Line::Stats {
                accepted: num(fields.next())?,
                open: num(fields.next())?,
                established: num(fields.next())?,
                down: num(fields.next())?,
                flaps: num(fields.next())?,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back() {
        let mut out = Vec::new();
        write_arrival(&mut out, 12345, b'A', b"000000AB000000000005");
        write_stats(&mut out, 3, 2, 1, 4, 9);
        let lines: Vec<&[u8]> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            parse(lines[0]),
            Some(Line::Arrival {
                at_ns: 12345,
                outcome: b'A',
                id: b"000000AB000000000005"
            })
        );
        assert_eq!(
            parse(lines[1]),
            Some(Line::Stats {
                accepted: 3,
                open: 2,
                established: 1,
                down: 4,
                flaps: 9
            })
        );
        assert_eq!(parse(b"x 1"), None);
        assert_eq!(parse(b"s 1 2 3"), None);
    }

    #[test]
    fn commands_read_back() {
        for c in [Command::Drop, Command::Down(27_999), Command::Up(0)] {
            let line = c.line();
            assert_eq!(Command::parse(line.trim_end().as_bytes()), Some(c));
        }
        assert_eq!(Command::parse(b"down"), None);
        assert_eq!(Command::parse(b"down x"), None);
        assert_eq!(Command::parse(b"drop all"), None);
        assert_eq!(Command::parse(b"dropped"), None);
    }
}

//! The report stream an endpoint process writes to whoever connects to its control address:
//! one text line per event, so that the driver (in another process) can join arrivals with its
//! own intended send times on the shared monotonic clock.
//!
//! - `a <arrival_ns> <outcome letter> <id>`: a message arrived (its MSH-10 or ITK tracking id).
//! - `s <accepted> <open> <established>`: connection counts, a few times a second.
//!
//! The other way, a watcher may send `drop\n`: the process then closes every accepted
//! connection at once (see `conns::State::watcher_event`).

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
    },
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

pub fn write_stats(out: &mut Vec<u8>, accepted: u64, open: u64, established: u64) {
    use std::io::Write;
    let _ = writeln!(out, "s {accepted} {open} {established}");
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
        b"s" => Some(Line::Stats {
            accepted: num(parts.next())?,
            open: num(parts.next())?,
            established: num(parts.next())?,
        }),
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
        write_stats(&mut out, 3, 2, 1);
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
                established: 1
            })
        );
        assert_eq!(parse(b"x 1"), None);
    }
}

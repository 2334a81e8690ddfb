//! The endpoint directory: a CSV file with a header row, one endpoint per row.
//!
//! Columns, in any order: `id`, `protocol`, `address` (required), `server_name`, `tls`, `ods`,
//! `itk_address`, `hl7_application`, `hl7_facility`, `prewarm` (optional). Cells are trimmed;
//! blank lines and lines starting with `#` are skipped. Rows become the same [`EndpointSpec`] as
//! `[[endpoint]]` tables, located by line, and the compiler checks both alike. Every row is read
//! even after a bad one, so one run reports every problem in the file.
use std::borrow::Cow;
use std::path::Path;

use super::diag::{did_you_mean, Diagnostic};
use super::file::{EndpointSpec, Loc, Val};
use crate::routes::endpoint::{named_by, LookupKeys, Protocol};

pub const COLUMNS: [&str; 10] = named_by("id");
const REQUIRED: [&str; 3] = ["id", "protocol", "address"];

/// What [`read`] found.
#[derive(Debug, Default)]
pub struct Rows {
    pub endpoints: Vec<EndpointSpec>,
    /// Ids of rows that were reported bad and left out.
    pub broken: Vec<String>,
    /// False when the header was unusable and no row was read at all.
    pub complete: bool,
    pub diags: Vec<Diagnostic>,
}

/// Reads the directory held in `data`; `file` is how diagnostics name it.
pub fn read(file: &Path, data: &[u8]) -> Rows {
    let mut diags = Vec::new();
    let data = &*without_comments(data);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut records = reader.records();
    // Lines are counted from byte offsets: csv's own line counter is not what people count.
    let newlines: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let line_at = |pos: Option<&csv::Position>| -> u64 {
        pos.map_or(0, |p| {
            // A record's position is where the reader started, before the blank lines it skipped.
            let mut byte = usize::try_from(p.byte()).unwrap_or(usize::MAX);
            while matches!(data.get(byte), Some(b'\n' | b'\r')) {
                byte += 1;
            }
            newlines.partition_point(|&n| n < byte) as u64 + 1
        })
    };

    // Column positions, in COLUMNS order.
    let mut at: [Option<usize>; 10] = [None; 10];
    let header_len;
    match records.next() {
        None => {
            diags.push(Diagnostic::file_error(
                file,
                "the directory is empty; it needs a header row",
            ));
            return Rows {
                diags,
                ..Rows::default()
            };
        }
        Some(Err(e)) => {
            diags.push(csv_error(file, &e, line_at(e.position())));
            return Rows {
                diags,
                ..Rows::default()
            };
        }
        Some(Ok(header)) => {
            header_len = header.len();
            let header_line = line_at(header.position());
            for (i, name) in header.iter().enumerate() {
                match COLUMNS.iter().position(|c| *c == name) {
                    Some(c) if at[c].is_some() => diags.push(Diagnostic::line_error(
                        file,
                        header_line,
                        format!("column `{name}` appears twice in the header"),
                    )),
                    Some(c) => at[c] = Some(i),
                    None => {
                        let mut d = Diagnostic::line_error(
                            file,
                            header_line,
                            format!("unknown column `{name}`"),
                        );
                        d.hint = did_you_mean(name, COLUMNS)
                            .or_else(|| Some(format!("the columns are: {}", COLUMNS.join(", "))));
                        diags.push(d);
                    }
                }
            }
            for r in REQUIRED {
                if COLUMNS
                    .iter()
                    .position(|c| *c == r)
                    .and_then(|c| at[c])
                    .is_none()
                {
                    diags.push(Diagnostic::line_error(
                        file,
                        header_line,
                        format!("the header has no `{r}` column, which every endpoint needs"),
                    ));
                }
            }
        }
    }
    if diags.iter().any(Diagnostic::is_error) {
        // Without a trustworthy header every row would be misread.
        return Rows {
            diags,
            ..Rows::default()
        };
    }

    let mut out = Vec::new();
    let mut broken = Vec::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                diags.push(csv_error(file, &e, line_at(e.position())));
                continue;
            }
        };
        let line = line_at(rec.position());
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.len() != header_len {
            diags.push(Diagnostic::line_error(
                file,
                line,
                format!(
                    "this row has {} fields but the header has {header_len}",
                    rec.len()
                ),
            ));
            broken.extend(at[0].and_then(|i| rec.get(i)).map(str::to_owned));
            continue;
        }
        let cell =
            |c: usize| -> Option<&str> { at[c].and_then(|i| rec.get(i)).filter(|s| !s.is_empty()) };
        let v = |s: &str| Val {
            value: s.to_owned(),
            loc: Loc::Csv(line),
        };
        let mut ok = true;
        let id = cell(0);
        if id.is_none() {
            diags.push(Diagnostic::line_error(file, line, "this row has no `id`"));
            ok = false;
        }
        let protocol = match cell(1) {
            None => {
                diags.push(Diagnostic::line_error(
                    file,
                    line,
                    "this row has no `protocol`",
                ));
                None
            }
            Some(p) => {
                let parsed = Protocol::parse(p);
                if parsed.is_none() {
                    let mut d = Diagnostic::line_error(
                        file,
                        line,
                        format!("unknown protocol `{p}`: expected one of mllp, mllps, itk-http, itk-https"),
                    );
                    d.hint = did_you_mean(p, Protocol::NAMES);
                    diags.push(d);
                }
                parsed
            }
        };
        let address = cell(2);
        if address.is_none() {
            diags.push(Diagnostic::line_error(
                file,
                line,
                "this row has no `address`",
            ));
            ok = false;
        }
        let prewarm = match cell(9) {
            None | Some("false" | "no" | "0") => false,
            Some("true" | "yes" | "1") => true,
            Some(other) => {
                diags.push(Diagnostic::line_error(
                    file,
                    line,
                    format!("`prewarm` must be true or false, not `{other}`"),
                ));
                ok = false;
                false
            }
        };
        let keys = LookupKeys {
            ods: cell(5).map(str::to_owned),
            itk_address: cell(6).map(str::to_owned),
            hl7_application: cell(7).map(str::to_owned),
            hl7_facility: cell(8).map(str::to_owned),
        };
        let key_locs = [5, 6, 7, 8].map(|c| cell(c).map(|_| Loc::Csv(line)));
        let (true, Some(id), Some(protocol), Some(address)) = (ok, id, protocol, address) else {
            broken.extend(id.map(str::to_owned));
            continue;
        };
        out.push(EndpointSpec {
            loc: Loc::Csv(line),
            name: v(id),
            protocol,
            address: v(address),
            server_name: cell(3).map(v),
            tls: cell(4).map(v),
            keys,
            key_locs,
            prewarm,
            delivery: Default::default(),
        });
    }
    Rows {
        endpoints: out,
        broken,
        complete: true,
        diags,
    }
}

/// The data with `#` comment lines emptied (their line ends kept, so line numbers hold). csv's
/// own comment support does not count the lines it skips.
fn without_comments(data: &[u8]) -> Cow<'_, [u8]> {
    let is_comment = |line: &[u8]| line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'#');
    if !data.split(|&b| b == b'\n').any(is_comment) {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len());
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        if !is_comment(line) {
            out.extend_from_slice(line);
        }
    }
    Cow::Owned(out)
}

fn csv_error(file: &Path, e: &csv::Error, line: u64) -> Diagnostic {
    // The error's own text repeats a position in csv's counting; ours is in the prefix.
    let what = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not UTF-8 text", err.field() + 1),
        _ => e.to_string(),
    };
    if e.position().is_some() {
        Diagnostic::line_error(file, line, format!("unreadable CSV: {what}"))
    } else {
        Diagnostic::file_error(file, format!("unreadable CSV: {what}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(csv: &str) -> Vec<String> {
        read(Path::new("endpoints.csv"), csv.as_bytes())
            .diags
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn reads_rows_with_lines() {
        let csv = "id,protocol,address,ods,prewarm\n# a comment\npas,mllp,pas.local:2575,RX8,yes\n\nlab , mllps , lab.local:6661 ,,\n";
        let rows = read(Path::new("endpoints.csv"), csv.as_bytes());
        assert!(rows.diags.is_empty(), "{:?}", rows.diags);
        let got: Vec<_> = rows
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.name.value.as_str(),
                    e.protocol,
                    e.keys.ods.as_deref(),
                    e.prewarm,
                    e.loc.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("pas", Protocol::Mllp, Some("RX8"), true, Loc::Csv(3)),
                ("lab", Protocol::Mllps, None, false, Loc::Csv(5)),
            ]
        );
    }

    #[test]
    fn bad_header_is_reported_once() {
        assert_eq!(
            errors("id,protocl,address\nx,mllp,a:1\n"),
            vec![
                "endpoints.csv:1: error: unknown column `protocl`\n  = hint: did you mean `protocol`?",
                "endpoints.csv:1: error: the header has no `protocol` column, which every endpoint needs",
            ]
        );
    }

    #[test]
    fn bad_rows_are_all_reported() {
        assert_eq!(
            errors("id,protocol,address,prewarm\n,mllp,a:1,\nb,mlp,a:2,\nc,mllp,a:3,maybe\nd,mllp\n"),
            vec![
                "endpoints.csv:2: error: this row has no `id`",
                "endpoints.csv:3: error: unknown protocol `mlp`: expected one of mllp, mllps, itk-http, itk-https\n  = hint: did you mean `mllp`?",
                "endpoints.csv:4: error: `prewarm` must be true or false, not `maybe`",
                "endpoints.csv:5: error: this row has 2 fields but the header has 4",
            ]
        );
    }
}

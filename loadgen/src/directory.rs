//! The endpoint directory in the router's CSV shape (`id,protocol,address,server_name,tls,ods,
//! itk_address,hl7_application,hl7_facility,prewarm`), written by the endpoint fleet and read
//! by the driver (to address messages across all of it) and by the bare relay.
//!
//! loadgen's endpoint `i` is `ep<i>`; an HL7v2 endpoint is found by its facility `F<i>` (MSH-6),
//! an ITK endpoint by its address `urn:nhs-uk:addressing:ods:E<i>`.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

pub const HEADER: &str =
    "id,protocol,address,server_name,tls,ods,itk_address,hl7_application,hl7_facility,prewarm";

/// The domain every endpoint's server name is in. Each endpoint has a name of its own, as
/// registered systems do (so the router's session memory works per endpoint, as it would in
/// production); one wildcard certificate for `*.` this domain serves the whole fleet.
pub const SERVER_DOMAIN: &str = "endpoints.loadgen.test";
/// The TLS profile the router's config names.
pub const TLS_PROFILE: &str = "loadgen";
/// The ITK path endpoints serve.
pub const ITK_PATH: &str = "/itk/syncsoap";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Mllp,
    Itk,
}

/// One endpoint as the fleet runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub index: usize,
    pub proto: Proto,
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Row {
    pub fn id(&self) -> String {
        format!("ep{:05}", self.index)
    }

    pub fn facility(&self) -> String {
        format!("F{:05}", self.index)
    }

    /// The name the router sends as SNI and checks the certificate against.
    pub fn server_name(&self) -> String {
        format!("{}.{SERVER_DOMAIN}", self.id())
    }

    pub fn ods(&self) -> String {
        format!("E{:05}", self.index)
    }

    pub fn itk_address(&self) -> String {
        format!("urn:nhs-uk:addressing:ods:{}", self.ods())
    }

    /// One CSV line (no newline).
    pub fn csv(&self, prewarm: bool) -> String {
        let mut s = String::new();
        let (protocol, address) = match (self.proto, self.tls) {
            (Proto::Mllp, false) => ("mllp", self.addr.to_string()),
            (Proto::Mllp, true) => ("mllps", self.addr.to_string()),
            (Proto::Itk, false) => ("itk-http", format!("http://{}{ITK_PATH}", self.addr)),
            (Proto::Itk, true) => ("itk-https", format!("https://{}{ITK_PATH}", self.addr)),
        };
        let (server_name, tls) = if self.tls {
            (self.server_name(), TLS_PROFILE)
        } else {
            (String::new(), "")
        };
        let _ = write!(s, "{},{protocol},{address},{server_name},{tls},", self.id());
        match self.proto {
            Proto::Mllp => {
                let _ = write!(s, ",,,{}", self.facility());
            }
            Proto::Itk => {
                let _ = write!(s, "{},{},,", self.ods(), self.itk_address());
            }
        }
        let _ = write!(s, ",{prewarm}");
        s
    }

    /// Reads a line that [`Row::csv`] wrote (other directories are not loadgen's to drive).
    pub fn parse(line: &str) -> Option<Row> {
        let cols: Vec<&str> = line.split(',').collect();
        let index = cols.first()?.strip_prefix("ep")?.parse().ok()?;
        let (proto, tls) = match *cols.get(1)? {
            "mllp" => (Proto::Mllp, false),
            "mllps" => (Proto::Mllp, true),
            "itk-http" => (Proto::Itk, false),
            "itk-https" => (Proto::Itk, true),
            _ => return None,
        };
        let address = cols.get(2)?;
        let hostport = match proto {
            Proto::Mllp => *address,
            Proto::Itk => {
                let rest = address.split_once("://")?.1;
                rest.split('/').next()?
            }
        };
        Some(Row {
            index,
            proto,
            addr: hostport.parse().ok()?,
            tls,
        })
    }
}

/// Writes a directory file.
pub fn write(path: &Path, rows: &[Row], prewarm: bool) -> std::io::Result<()> {
    let mut text = String::with_capacity(rows.len() * 96 + 128);
    text.push_str("# written by loadgen: one row per endpoint of the fleet\n");
    text.push_str(HEADER);
    text.push('\n');
    for row in rows {
        text.push_str(&row.csv(prewarm));
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// Reads a directory file that loadgen wrote; other lines are skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Row>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter_map(Row::parse).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_csv() {
        for (proto, tls) in [
            (Proto::Mllp, false),
            (Proto::Mllp, true),
            (Proto::Itk, false),
            (Proto::Itk, true),
        ] {
            let row = Row {
                index: 1234,
                proto,
                addr: "127.1.4.5:40000".parse().unwrap(),
                tls,
            };
            let line = row.csv(true);
            assert_eq!(line.split(',').count(), HEADER.split(',').count(), "{line}");
            assert_eq!(Row::parse(&line), Some(row));
        }
        assert_eq!(Row::parse(HEADER), None);
    }
}

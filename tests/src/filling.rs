//! Filling a router's log: large messages sent one at a time until it refuses one, for the
//! tests of a full disk and a full log budget.
use crate::endpoint::{msa, Sender};

/// An HL7v2 message of about `kib` KiB (an OBX of `x`s) with control id `id`.
pub fn big_message(id: &str, kib: usize) -> Vec<u8> {
    let mut m =
        format!("MSH|^~\\&|PAS|RX8|EPR|RX8|20261125||ADT^A08|{id}|P|2.4\rPID|1\rOBX|1|TX|||")
            .into_bytes();
    m.extend(std::iter::repeat_n(b'x', kib * 1024));
    m.push(b'\r');
    m
}

/// What [`send_until_refused`] saw.
pub struct Filled {
    /// The ids acknowledged with AA, in order.
    pub acked: Vec<String>,
    /// The first refusal: MSA-1 and the whole ACK as text; `None` if all `limit` were taken.
    pub refused: Option<(String, String)>,
}

impl Filled {
    /// The ids acknowledged and the refusal the test expected after them.
    pub fn until_refused(self) -> (Vec<String>, (String, String)) {
        let n = self.acked.len();
        let refused = self
            .refused
            .unwrap_or_else(|| panic!("{n} messages were all accepted: the log never filled"));
        (self.acked, refused)
    }
}

/// Sends `prefix0`, `prefix1`, … (each [`big_message`] of `kib` KiB), at most `limit`, until
/// the router answers one with anything but AA.
pub fn send_until_refused(sender: &mut Sender, prefix: &str, kib: usize, limit: usize) -> Filled {
    let mut acked = Vec::new();
    for i in 0..limit {
        let id = format!("{prefix}{i}");
        let ack = sender.exchange(&big_message(&id, kib)).expect("an answer");
        let (code, acked_id) = msa(&ack);
        assert_eq!(acked_id, id);
        if code != "AA" {
            let text = String::from_utf8_lossy(&ack).into_owned();
            return Filled {
                acked,
                refused: Some((code, text)),
            };
        }
        acked.push(id);
    }
    Filled {
        acked,
        refused: None,
    }
}

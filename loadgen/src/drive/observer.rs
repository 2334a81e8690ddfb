//! The driver's side of the endpoint fleets' report streams: one TCP connection per fleet
//! process, read without blocking, lines split and handed to the caller; the latest connection
//! counts of each fleet are kept.
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};

use crate::fleet::report::{self, Line};

pub struct Watch {
    pub tcp: TcpStream,
    buf: Vec<u8>,
    pub accepted: u64,
    pub open: u64,
    pub established: u64,
    /// Endpoints of this process down now, and down events so far (flapping).
    pub down: u64,
    pub flaps: u64,
}

/// Connections to every fleet's control address.
#[derive(Default)]
pub struct Observer {
    pub watches: Vec<Watch>,
}

impl Observer {
    pub fn connect(addrs: &[SocketAddr]) -> io::Result<Observer> {
        let mut watches = Vec::new();
        for addr in addrs {
            let tcp = TcpStream::connect(addr)?;
            tcp.set_nonblocking(true)?;
            watches.push(Watch {
                tcp,
                buf: Vec::new(),
                accepted: 0,
                open: 0,
                established: 0,
                down: 0,
                flaps: 0,
            });
        }
        Ok(Observer { watches })
    }

    /// Established connections over all fleets, as last reported.
    pub fn established(&self) -> u64 {
        self.watches.iter().map(|w| w.established).sum()
    }

    pub fn accepted(&self) -> u64 {
        self.watches.iter().map(|w| w.accepted).sum()
    }

    /// Endpoints down now over all fleets, as last reported.
    pub fn down(&self) -> u64 {
        self.watches.iter().map(|w| w.down).sum()
    }

    /// Down events over all fleets, as last reported.
    pub fn flaps(&self) -> u64 {
        self.watches.iter().map(|w| w.flaps).sum()
    }

    /// Reads what fleet `index` has sent and hands each arrival to `on_arrival`.
    pub fn read(
        &mut self,
        index: usize,
        mut on_arrival: impl FnMut(u64, u8, &[u8]),
    ) -> io::Result<()> {
        let Some(w) = self.watches.get_mut(index) else {
            return Ok(());
        };
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match w.tcp.read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    w.buf.extend_from_slice(&chunk[..n]);
                    if n < chunk.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &w.buf[start..]) {
            let line = &w.buf[start..start + nl];
            match report::parse(line) {
                Some(Line::Arrival { at_ns, outcome, id }) => on_arrival(at_ns, outcome, id),
                Some(Line::Stats {
                    accepted,
                    open,
                    established,
                    down,
                    flaps,
                }) => {
                    w.accepted = accepted;
                    w.open = open;
                    w.established = established;
                    w.down = down;
                    w.flaps = flaps;
                }
                None => {}
            }
            start += nl + 1;
        }
        w.buf.drain(..start);
        Ok(())
    }

    /// Reads everything every fleet has sent, ignoring arrivals (between runs).
    pub fn pump(&mut self) {
        for i in 0..self.watches.len() {
            let _ = self.read(i, |_, _, _| {});
        }
    }
}

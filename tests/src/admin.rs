//! Requests to the router's admin address as any client could make them: raw HTTP/1.1 over
//! TCP or TLS, with exactly the headers the test chooses.
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// An admin response: status, header lines and body (the server closes after each response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl AdminResponse {
    /// The value of header `name` (any case), if the response has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `METHOD path` with `headers` (each `Name: value`) and reads the whole response.
pub fn request(
    admin: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
) -> io::Result<AdminResponse> {
    let mut tcp = TcpStream::connect(admin)?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    exchange(&mut tcp, method, path, headers)
}

/// As [`request`], over TLS with `client` (which may or may not carry a client certificate).
pub fn request_tls(
    admin: SocketAddr,
    client: Arc<ClientConfig>,
    method: &str,
    path: &str,
    headers: &[&str],
) -> io::Result<AdminResponse> {
    let tcp = TcpStream::connect(admin)?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    let name = ServerName::from(admin.ip());
    let conn = ClientConnection::new(client, name).map_err(io::Error::other)?;
    exchange(&mut StreamOwned::new(conn, tcp), method, path, headers)
}

fn exchange(
    stream: &mut (impl Read + Write),
    method: &str,
    path: &str,
    headers: &[&str],
) -> io::Result<AdminResponse> {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    stream.flush()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, head.to_string()))?;
    Ok(AdminResponse {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// `Host: ADDR`, as a client that dialled the address itself sends.
pub fn host(admin: SocketAddr) -> String {
    format!("Host: {admin}")
}

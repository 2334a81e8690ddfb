//! Plain and TLS streams over real loopback sockets, on both drivers, with certificates made
//! by our own CA.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use monoio::net::{TcpListener, TcpStream};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, ServerConfig};

use super::pool::{BufferPool, IO_BUFFER};
use super::stream::Stream;
use super::unbuffered::{Buffers, Need, TlsConn, ToSend};
use crate::runtime::driver::{build_runtime, Driver, DriverChoice};
use crate::tls::config::{client_config, server_config, ClientCerts, ClientSettings};
use crate::tls::pki::Authority;
use crate::tls::sessions::SessionStore;

fn drivers() -> Vec<Driver> {
    let mut drivers = vec![Driver::Epoll];
    if DriverChoice::Uring.resolve().is_ok() {
        drivers.push(Driver::Uring);
    }
    drivers
}

struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1, a client certificate, and a second,
    /// unrelated CA, all written to a fresh directory.
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("ganglion-net-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Authority::new("ganglion test CA").unwrap();
        ca.write_cert(&dir.join("ca.crt")).unwrap();
        ca.issue_server(&["127.0.0.1".into(), "endpoint.test".into()])
            .unwrap()
            .write(&dir, "server")
            .unwrap();
        ca.issue_client("sender.test")
            .unwrap()
            .write(&dir, "client")
            .unwrap();
        let other = Authority::new("someone else's CA").unwrap();
        other.write_cert(&dir.join("other-ca.crt")).unwrap();
        other
            .issue_client("stranger.test")
            .unwrap()
            .write(&dir, "stranger")
            .unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn server(&self, require_client: bool) -> Arc<ServerConfig> {
        let ca = self.path("ca.crt");
        let clients = if require_client {
            ClientCerts::Required(&ca)
        } else {
            ClientCerts::NotAsked
        };
        server_config(&self.path("server.crt"), &self.path("server.key"), clients).unwrap()
    }

    fn client(&self, ca: &str, cert: Option<&str>, verify_name: bool) -> Arc<ClientConfig> {
        let sessions = Arc::new(SessionStore::for_endpoints([]));
        self.client_sharing(ca, cert, verify_name, sessions)
    }

    /// A mutual-TLS client for `endpoint.test` that keeps its sessions in `sessions`.
    fn client_with_sessions(&self, sessions: Arc<SessionStore>) -> Arc<ClientConfig> {
        self.client_sharing("ca.crt", Some("client"), true, sessions)
    }

    fn client_sharing(
        &self,
        ca: &str,
        cert: Option<&str>,
        verify_name: bool,
        sessions: Arc<SessionStore>,
    ) -> Arc<ClientConfig> {
        let ca = self.path(ca);
        let cert = cert.map(|stem| {
            (
                self.path(&format!("{stem}.crt")),
                self.path(&format!("{stem}.key")),
            )
        });
        client_config(&ClientSettings {
            ca: Some(&ca),
            client_cert: cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            verify_server_name: verify_name,
            sessions,
        })
        .unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs an echo server for one connection on its own thread and runtime; returns its port.
fn echo_server(
    driver: Driver,
    tls: Option<Arc<ServerConfig>>,
) -> (u16, std::thread::JoinHandle<std::io::Result<()>>) {
    echo_server_for(driver, tls, 1)
}

/// An echo server for `connections` connections, one after another.
fn echo_server_for(
    driver: Driver,
    tls: Option<Arc<ServerConfig>>,
    connections: usize,
) -> (u16, std::thread::JoinHandle<std::io::Result<()>>) {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut rt = build_runtime(driver)?;
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener)?;
            let pool = BufferPool::new(IO_BUFFER, 4);
            for _ in 0..connections {
                let (tcp, _) = listener.accept().await?;
                let mut stream = match &tls {
                    Some(config) => Stream::tls(
                        tcp,
                        UnbufferedServerConnection::new(Arc::clone(config))
                            .map_err(std::io::Error::other)?,
                    ),
                    None => Stream::Plain(tcp),
                };
                stream.handshake(&pool).await?;
                let mut buf = Vec::new();
                loop {
                    stream.readable().await?;
                    buf.clear();
                    if stream.read_into(&mut buf, &pool).await? == 0 {
                        break;
                    }
                    stream.write_all(&buf, &pool).await?;
                }
            }
            Ok(())
        })
    });
    (port, handle)
}

/// What one client connection got back, and whether its TLS handshake resumed a session.
struct Exchanged {
    replies: Vec<Vec<u8>>,
    resumed: bool,
}

/// Connects, sends `messages` one at a time and returns what came back for each.
async fn exchange(
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    name: &str,
    messages: &[Vec<u8>],
) -> std::io::Result<Exchanged> {
    let pool = BufferPool::new(IO_BUFFER, 4);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut stream = match tls {
        Some(config) => {
            let name = ServerName::try_from(name.to_owned()).map_err(std::io::Error::other)?;
            Stream::tls(
                tcp,
                UnbufferedClientConnection::new(config, name).map_err(std::io::Error::other)?,
            )
        }
        None => Stream::Plain(tcp),
    };
    stream.set_nodelay()?;
    stream.handshake(&pool).await?;
    let resumed = stream.resumed();
    let mut replies = Vec::new();
    for message in messages {
        stream.write_all(message, &pool).await?;
        let mut got = Vec::new();
        while got.len() < message.len() {
            stream.readable().await?;
            if stream.read_into(&mut got, &pool).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        replies.push(got);
    }
    stream.shutdown(&pool).await?;
    Ok(Exchanged { replies, resumed })
}

fn messages() -> Vec<Vec<u8>> {
    vec![
        b"MSH|small".to_vec(),
        vec![b'x'; 100_000],
        (0..=255u8).cycle().take(40_000).collect(),
    ]
}

fn run_client(
    driver: Driver,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    name: &str,
) -> std::io::Result<Vec<Vec<u8>>> {
    let mut rt = build_runtime(driver).unwrap();
    rt.block_on(exchange(port, tls, name, &messages()))
        .map(|e| e.replies)
}

#[test]
fn plain_echo_on_both_drivers() {
    for driver in drivers() {
        let (port, server) = echo_server(driver, None);
        let replies = run_client(driver, port, None, "").unwrap();
        assert_eq!(replies, messages(), "{driver}");
        server.join().unwrap().unwrap();
    }
}

#[test]
fn mutual_tls_echo_on_both_drivers() {
    let pki = Pki::new("mtls");
    for driver in drivers() {
        let (port, server) = echo_server(driver, Some(pki.server(true)));
        let replies = run_client(
            driver,
            port,
            Some(pki.client("ca.crt", Some("client"), true)),
            "127.0.0.1",
        )
        .unwrap();
        assert_eq!(replies, messages(), "{driver}");
        server.join().unwrap().unwrap();
    }
}

/// Sends `sent` to the echo server and reads the echo back with `read_within` into a buffer
/// of 1,000 bytes that is emptied after every read: whatever a read brings must fit in it.
async fn echo_within(
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    sent: &[u8],
) -> std::io::Result<Vec<u8>> {
    let pool = BufferPool::new(IO_BUFFER, 4);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut stream = match tls {
        Some(config) => {
            let name = ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
            Stream::tls(
                tcp,
                UnbufferedClientConnection::new(config, name).map_err(std::io::Error::other)?,
            )
        }
        None => Stream::Plain(tcp),
    };
    stream.handshake(&pool).await?;
    stream.write_all(sent, &pool).await?;
    let mut buf = Vec::with_capacity(1000);
    let capacity = buf.capacity();
    let mut got = Vec::new();
    while got.len() < sent.len() {
        stream.readable().await?;
        if stream.read_within(&mut buf, &pool).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        assert_eq!(buf.capacity(), capacity, "a read grew the buffer");
        got.extend_from_slice(&buf);
        buf.clear();
    }
    stream.shutdown(&pool).await?;
    Ok(got)
}

#[test]
fn reads_within_a_buffer_never_grow_it_and_lose_nothing() {
    let pki = Pki::new("within");
    let sent: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    for driver in drivers() {
        for tls in [false, true] {
            let (port, server) = echo_server(driver, tls.then(|| pki.server(false)));
            let client = tls.then(|| pki.client("ca.crt", None, true));
            let mut rt = build_runtime(driver).unwrap();
            let got = rt.block_on(echo_within(port, client, &sent)).unwrap();
            assert!(got == sent, "{driver}, tls {tls}");
            server.join().unwrap().unwrap();
        }
    }
}

/// Connects `times` times in a row to a server with one configuration (so one ticket key)
/// with one client configuration; whether each resumed.
fn reconnect(
    driver: Driver,
    server: &Arc<ServerConfig>,
    config: &Arc<ClientConfig>,
    times: usize,
) -> Vec<bool> {
    let (port, server) = echo_server_for(driver, Some(Arc::clone(server)), times);
    let mut rt = build_runtime(driver).unwrap();
    let resumed = (0..times)
        .map(|_| {
            let got = rt
                .block_on(exchange(
                    port,
                    Some(Arc::clone(config)),
                    "endpoint.test",
                    &messages(),
                ))
                .unwrap();
            assert_eq!(got.replies, messages());
            got.resumed
        })
        .collect();
    server.join().unwrap().unwrap();
    resumed
}

#[test]
fn reconnects_resume_and_sessions_are_kept_per_endpoint() {
    let pki = Pki::new("resume");
    let name = || ServerName::try_from("endpoint.test").unwrap();
    for driver in drivers() {
        // One endpoint by this name: the server sends two tickets per connection, the store
        // keeps one, and every reconnect resumes with it.
        let server = pki.server(true);
        let store = Arc::new(SessionStore::for_endpoints([name()]));
        let config = pki.client_with_sessions(Arc::clone(&store));
        let resumed = reconnect(driver, &server, &config, 3);
        assert_eq!(resumed, [false, true, true], "{driver}");
        assert_eq!(store.tickets(), 1, "{driver}");

        // A restarted server has new ticket keys: the old ticket fails over to a full
        // handshake, and the new server's ticket is used from then on.
        let restarted = pki.server(true);
        let resumed = reconnect(driver, &restarted, &config, 2);
        assert_eq!(resumed, [false, true], "{driver}");

        // Three endpoints share the name: it keeps three tickets, never more.
        let store = Arc::new(SessionStore::for_endpoints([name(), name(), name()]));
        let config = pki.client_with_sessions(Arc::clone(&store));
        assert_eq!(reconnect(driver, &server, &config, 1), [false], "{driver}");
        assert_eq!(store.tickets(), 2, "{driver}");
        let resumed = reconnect(driver, &server, &config, 3);
        assert_eq!(resumed, [true; 3], "{driver}");
        assert_eq!(store.tickets(), 3, "{driver}");
    }
}

#[test]
fn a_client_without_a_certificate_is_refused_by_an_mtls_listener() {
    let pki = Pki::new("nocert");
    for driver in drivers() {
        let (port, server) = echo_server(driver, Some(pki.server(true)));
        // TLS 1.3 clients finish their side before the server checks; the refusal then shows
        // as an alert on the first read.
        let result = run_client(
            driver,
            port,
            Some(pki.client("ca.crt", None, true)),
            "127.0.0.1",
        );
        assert!(result.is_err(), "{driver}: {result:?}");
        let server_error = server.join().unwrap().unwrap_err();
        assert!(
            server_error.to_string().contains("certificate"),
            "{server_error}"
        );
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("otherca");
    let (port, server) = echo_server(Driver::Epoll, Some(pki.server(true)));
    let result = run_client(
        Driver::Epoll,
        port,
        Some(pki.client("ca.crt", Some("stranger"), true)),
        "127.0.0.1",
    );
    assert!(result.is_err());
    assert!(server.join().unwrap().is_err());
}

#[test]
fn server_names_are_checked_unless_the_profile_says_not_to() {
    let pki = Pki::new("names");
    let (port, server) = echo_server(Driver::Epoll, Some(pki.server(false)));
    let err = run_client(
        Driver::Epoll,
        port,
        Some(pki.client("ca.crt", None, true)),
        "wrong.test",
    )
    .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
    let _ = server.join();

    let (port, server) = echo_server(Driver::Epoll, Some(pki.server(false)));
    let replies = run_client(
        Driver::Epoll,
        port,
        Some(pki.client("ca.crt", None, false)),
        "wrong.test",
    )
    .unwrap();
    assert_eq!(replies, messages());
    server.join().unwrap().unwrap();

    // Turning the name check off does not turn trust off.
    let (port, server) = echo_server(Driver::Epoll, Some(pki.server(false)));
    let err = run_client(
        Driver::Epoll,
        port,
        Some(pki.client("other-ca.crt", None, false)),
        "wrong.test",
    )
    .unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let _ = server.join();
}

#[test]
fn configuration_errors_name_the_file() {
    let pki = Pki::new("badfiles");
    let missing = pki.path("missing.crt");
    let err = server_config(&missing, &pki.path("server.key"), ClientCerts::NotAsked).unwrap_err();
    assert!(
        err.to_string().starts_with(&missing.display().to_string()),
        "{err}"
    );
    std::fs::write(pki.path("empty.crt"), "").unwrap();
    let err = client_config(&ClientSettings {
        ca: Some(&pki.path("empty.crt")),
        client_cert: None,
        verify_server_name: true,
        sessions: Arc::new(SessionStore::for_endpoints([])),
    })
    .unwrap_err();
    assert!(err.to_string().contains("holds no certificate"), "{err}");
    let key_as_cert: &Path = &pki.path("server.key");
    let err =
        server_config(key_as_cert, &pki.path("server.key"), ClientCerts::NotAsked).unwrap_err();
    assert!(err.to_string().contains("server.key"), "{err}");
}

/// One side of an in-memory TLS conversation: its connection and its buffers.
struct Side {
    conn: TlsConn,
    incoming: Vec<u8>,
    plaintext: Vec<u8>,
}

impl Side {
    /// Advances, and returns what it needs and the TLS bytes it wants sent.
    fn advance(&mut self, send: ToSend<'_>) -> (Result<Need, rustls::Error>, Vec<u8>) {
        let mut outgoing = Vec::new();
        let need = self.conn.advance(
            Buffers {
                incoming: &mut self.incoming,
                plaintext: &mut self.plaintext,
                outgoing: &mut outgoing,
            },
            send,
        );
        (need, outgoing)
    }
}

/// Hands `bytes` to `to` in pieces of `piece` bytes, advancing after each.
fn deliver(to: &mut Side, bytes: &[u8], piece: usize) -> Vec<u8> {
    let mut replies = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        to.incoming.extend_from_slice(chunk);
        let (need, out) = to.advance(ToSend::Nothing);
        need.unwrap();
        replies.extend(out);
    }
    replies
}

fn sides(pki: &Pki, client_cert: Option<&str>) -> (Side, Side) {
    let name = ServerName::try_from("endpoint.test").unwrap();
    let client = UnbufferedClientConnection::new(pki.client("ca.crt", client_cert, true), name);
    let server = UnbufferedServerConnection::new(pki.server(true));
    let side = |conn: TlsConn| Side {
        conn,
        incoming: Vec::new(),
        plaintext: Vec::new(),
    };
    (side(client.unwrap().into()), side(server.unwrap().into()))
}

/// Runs the handshake, delivering every flight in `piece`-byte pieces.
fn handshake_in_memory(client: &mut Side, server: &mut Side, piece: usize) {
    let (_, mut to_server) = client.advance(ToSend::Nothing);
    for _ in 0..8 {
        let to_client = deliver(server, &to_server, piece);
        to_server = deliver(client, &to_client, piece);
        if to_server.is_empty() && !client.conn.common().is_handshaking() {
            break;
        }
    }
    assert!(!client.conn.common().is_handshaking());
    assert!(!server.conn.common().is_handshaking());
}

#[test]
fn unbuffered_tls_over_memory_in_pieces_of_any_size() {
    let pki = Pki::new("memory");
    for piece in [1, 7, 500, 1 << 20] {
        let (mut client, mut server) = sides(&pki, Some("client"));
        handshake_in_memory(&mut client, &mut server, piece);

        for message in messages() {
            let (need, tls) = client.advance(ToSend::Data(&message));
            assert_eq!(need.unwrap(), Need::Ready);
            assert!(deliver(&mut server, &tls, piece).is_empty());
            assert_eq!(
                std::mem::take(&mut server.plaintext),
                message,
                "piece {piece}"
            );
            // Whole records were consumed: nothing is held between messages.
            assert!(server.incoming.is_empty());
        }

        let (need, tls) = client.advance(ToSend::CloseNotify);
        assert_eq!(need.unwrap(), Need::Ready);
        server.incoming.extend_from_slice(&tls);
        assert_eq!(server.advance(ToSend::Nothing).0.unwrap(), Need::Closed);
    }
}

#[test]
fn unbuffered_tls_errors_come_with_the_alert_for_the_peer() {
    let pki = Pki::new("memory-alert");
    // The server asks for a client certificate and gets none.
    let (mut client, mut server) = sides(&pki, None);
    let (_, hello) = client.advance(ToSend::Nothing);
    let flight = deliver(&mut server, &hello, 1 << 20);
    let finished = deliver(&mut client, &flight, 1 << 20);
    server.incoming.extend_from_slice(&finished);
    let (need, alert) = server.advance(ToSend::Nothing);
    let err = need.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(!alert.is_empty(), "no alert for the peer");
    // The client reads it as the reason.
    client.incoming.extend_from_slice(&alert);
    let err = client.advance(ToSend::Nothing).0.unwrap_err();
    assert!(err.to_string().contains("alert"), "{err}");
}

//! The admin address as an untrusted network sees it: only holders of the token (and, over
//! TLS, of a client certificate) may use it, web pages of other sites are turned away, the
//! probes stay open, and it keeps answering while clients hang on to connections.
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tests::admin::{host, request, request_tls, AdminResponse};
use tests::pki::TestPki;
use tests::process::{ganglion, ganglion_exit, RouterProcess};
use tests::scratch::Scratch;
use tests::WAIT;

fn routes(scratch: &Scratch, server_extra: &str) -> PathBuf {
    scratch.file(
        "routes.toml",
        format!(
            "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"127.0.0.1:0\"\n{server_extra}\n\
             [[listener]]\nname = \"in\"\nprotocol = \"mllp\"\nbind = \"127.0.0.1:0\"\n\n\
             [[endpoint]]\nname = \"epr\"\nprotocol = \"mllp\"\naddress = \"127.0.0.1:9\"\n\
             prewarm = false\n\n\
             [[route]]\nname = \"all\"\nhl7.message_type = \"ADT\"\nto = \"epr\"\n",
            scratch.join("data").display()
        ),
    )
}

fn start(config: &Path) -> RouterProcess {
    RouterProcess::start(config, &["--grace", "1"], &["in", "admin"])
}

/// True while the server has neither closed `stream` nor sent anything on it.
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let open =
        matches!((&*stream).read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

#[test]
fn health_is_answered_while_other_clients_hold_connections_doing_nothing() {
    let scratch = Scratch::new("admin-slow");
    let config = routes(&scratch, "");
    let router = start(&config);
    let admin = router.addr("admin");
    // Clients that connect and say nothing, and one that stops halfway through its head.
    let mut idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(admin).unwrap()).collect();
    let half = TcpStream::connect(admin).unwrap();
    (&half)
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: ")
        .unwrap();
    idle.push(half);

    let health = request(admin, "GET", "/healthz", &[&host(admin)]).unwrap();
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    // Answered without waiting for the silent ones to give up.
    for (i, stream) in idle.iter().enumerate() {
        assert!(
            still_open(stream),
            "connection {i} was closed before /healthz was answered"
        );
    }

    // A silent client does not keep its connection for ever: the server closes it.
    let silent = &idle[0];
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let closed = (&*silent).read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "a silent connection was kept open: {closed:?}"
    );
    for stream in &idle {
        let _ = stream.shutdown(Shutdown::Both);
    }
    assert!(router.terminate(WAIT).success());
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn token_of(scratch: &Scratch) -> String {
    std::fs::read_to_string(scratch.join("data/admin.token"))
        .unwrap()
        .trim()
        .to_string()
}

fn get(admin: SocketAddr, path: &str, headers: &[&str]) -> AdminResponse {
    request(admin, "GET", path, headers).unwrap()
}

#[test]
fn the_api_needs_the_token_and_a_host_that_names_it_while_the_probes_stay_open() {
    let scratch = Scratch::new("admin-token");
    let config = routes(&scratch, "");
    let router = start(&config);
    let admin = router.addr("admin");
    // Made at start-up, readable by the router's user alone.
    let token_file = scratch.join("data/admin.token");
    assert_eq!(mode(&token_file), 0o600);
    let token = token_of(&scratch);
    let bearer = format!("Authorization: Bearer {token}");
    let host = host(admin);

    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(admin, probe, &[]).status, 200, "{probe}");
        assert_eq!(
            get(admin, probe, &["Host: prometheus.internal:80"]).status,
            200
        );
    }
    let wrong = "Authorization: Bearer 00000000000000000000000000000000";
    for (method, path) in [
        ("GET", "/dead-letters"),
        ("GET", "/dead-letters/1"),
        ("POST", "/dead-letters/1/drop"),
        ("POST", "/dead-letters/1/replay"),
        ("POST", "/reload"),
        ("GET", "/nothing-here"),
    ] {
        for headers in [vec![host.as_str()], vec![host.as_str(), wrong]] {
            let r = request(admin, method, path, &headers).unwrap();
            assert_eq!(r.status, 401, "{method} {path} {headers:?}: {r:?}");
        }
    }
    let listed = get(admin, "/dead-letters", &[&host, &bearer]);
    // What the API answers is never cached nor sniffed: dead letters are patient data.
    assert_eq!(
        listed.header("cache-control"),
        Some("no-store"),
        "{listed:?}"
    );
    assert_eq!(listed.header("x-content-type-options"), Some("nosniff"));
    assert_eq!((listed.status, listed.body.as_str()), (200, ""));
    let reloaded = request(admin, "POST", "/reload", &[&host, &bearer]).unwrap();
    assert_eq!(reloaded.status, 200, "{reloaded:?}");
    // Other names for this machine that a client may use.
    let localhost = format!("Host: localhost:{}", admin.port());
    assert_eq!(
        get(admin, "/dead-letters", &[&localhost, &bearer]).status,
        200
    );
    let same_site = format!("Origin: http://localhost:{}", admin.port());
    assert_eq!(
        get(admin, "/dead-letters", &[&host, &same_site, &bearer]).status,
        200
    );

    // A page of another site, or a name that only resolves here by DNS rebinding: even with
    // the token (which such a page should never have), refused.
    let foreign_host = format!("Host: attacker.example:{}", admin.port());
    for headers in [
        vec![foreign_host.as_str(), bearer.as_str()],
        vec![
            host.as_str(),
            "Origin: http://attacker.example",
            bearer.as_str(),
        ],
        vec![host.as_str(), "Origin: null", bearer.as_str()],
    ] {
        let r = request(admin, "POST", "/reload", &headers).unwrap();
        assert_eq!(r.status, 403, "{headers:?}: {r:?}");
    }

    // The command line finds the token through the routes file, or is given the file (the
    // address is given: the file says port 0).
    let config_arg = config.display().to_string();
    let admin_arg = admin.to_string();
    let by_config = ganglion(&["reload", "--config", &config_arg, "--admin", &admin_arg]);
    assert!(by_config.status.success(), "{by_config:?}");
    let by_flag = ganglion(&[
        "reload",
        "--admin",
        &admin_arg,
        "--token-file",
        &token_file.display().to_string(),
    ]);
    assert!(by_flag.status.success(), "{by_flag:?}");
    let forged = scratch.file("forged.token", "ffffffffffffffffffffffffffffffff\n");
    let refused = ganglion(&[
        "reload",
        "--admin",
        &admin_arg,
        "--token-file",
        &forged.display().to_string(),
    ]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("wrong admin token"),
        "{refused:?}"
    );
    assert!(router.terminate(WAIT).success());
}

#[test]
fn a_named_token_file_must_be_private() {
    let scratch = Scratch::new("admin-token-file");
    let token_file = scratch.file("secret.token", "a-token-of-our-own-choosing-0123\n");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = routes(&scratch, "admin_token_file = \"secret.token\"\n");
    let config_arg = config.display().to_string();
    let output = ganglion_exit(&["run", "--config", &config_arg, "--no-watch"], WAIT)
        .expect("ganglion started with a token file everyone can read");
    assert!(!output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&token_file.display().to_string()), "{said}");
    assert!(said.contains("mode 0644"), "{said}");

    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let router = start(&config);
    let admin = router.addr("admin");
    let bearer = "Authorization: Bearer a-token-of-our-own-choosing-0123";
    assert_eq!(
        get(admin, "/dead-letters", &[&host(admin), bearer]).status,
        200
    );
    assert!(
        !scratch.join("data/admin.token").exists(),
        "no second token was made"
    );
    let admin_arg = admin.to_string();
    let by_config = ganglion(&["reload", "--config", &config_arg, "--admin", &admin_arg]);
    assert!(by_config.status.success(), "{by_config:?}");
    assert!(router.terminate(WAIT).success());
}

#[test]
fn over_tls_the_admin_address_requires_a_client_certificate() {
    let scratch = Scratch::new("admin-tls");
    let pki = TestPki::new();
    let config = routes(
        &scratch,
        &format!(
            "admin_cert = \"{}\"\nadmin_key = \"{}\"\nadmin_client_ca = \"{}\"\n",
            pki.toml("server.crt"),
            pki.toml("server.key"),
            pki.toml("ca.crt")
        ),
    );
    let router = start(&config);
    let admin = router.addr("admin");
    let bearer = format!("Authorization: Bearer {}", token_of(&scratch));
    let host = host(admin);

    let listed = request_tls(
        admin,
        pki.client(true),
        "GET",
        "/dead-letters",
        &[&host, &bearer],
    );
    assert_eq!(listed.unwrap().status, 200);
    let health = request_tls(admin, pki.client(true), "GET", "/healthz", &[&host]).unwrap();
    assert_eq!(health.status, 200);
    // The certificate does not replace the token.
    let no_token = request_tls(admin, pki.client(true), "POST", "/reload", &[&host]).unwrap();
    assert_eq!(no_token.status, 401);
    // Without a client certificate the handshake fails: not even the probes are served.
    let anonymous = request_tls(admin, pki.client(false), "GET", "/healthz", &[&host]);
    assert!(anonymous.is_err(), "{anonymous:?}");
    // Nor is plain HTTP.
    let plain = request(admin, "GET", "/healthz", &[&host]);
    assert!(
        plain.is_err() || plain.as_ref().is_ok_and(|r| r.status != 200),
        "{plain:?}"
    );

    let config_arg = config.display().to_string();
    let admin_arg = admin.to_string();
    let tls_args = [
        "--tls-ca",
        &pki.toml("ca.crt"),
        "--tls-cert",
        &pki.toml("client.crt"),
        "--tls-key",
        &pki.toml("client.key"),
    ];
    let mut args = vec!["reload", "--config", &config_arg, "--admin", &admin_arg];
    args.extend_from_slice(&tls_args);
    let reloaded = ganglion(&args);
    assert!(reloaded.status.success(), "{reloaded:?}");
    let ca = pki.toml("ca.crt");
    let without_cert = ganglion(&[
        "reload",
        "--config",
        &config_arg,
        "--admin",
        &admin_arg,
        "--tls-ca",
        &ca,
    ]);
    assert!(!without_cert.status.success(), "{without_cert:?}");
    let mut args = vec!["dead-letters", "list", "--json", "--admin", &admin_arg];
    args.extend_from_slice(&["--config", &config_arg]);
    args.extend_from_slice(&tls_args);
    let listed = ganglion(&args);
    assert!(listed.status.success(), "{listed:?}");
    assert!(router.terminate(WAIT).success());
}

#[test]
fn beyond_loopback_the_admin_address_needs_client_certificates_or_an_explicit_yes() {
    let scratch = Scratch::new("admin-remote");
    let pki = TestPki::new();
    let remote = |extra: &str| -> std::process::Output {
        let text = format!(
            "[server]\nworkers = 1\ndata_dir = \"{}\"\nadmin = \"0.0.0.0:9464\"\n{extra}",
            scratch.join("data").display()
        );
        let config = scratch.file("routes.toml", text);
        ganglion(&["check", "--config", &config.display().to_string()])
    };
    let refused = remote("");
    assert_eq!(refused.status.code(), Some(78), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stdout).into_owned()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("routes.toml:4:9: error: the admin address 0.0.0.0:9464 is reachable beyond this machine"),
        "{said}"
    );
    let tls_only = remote(&format!(
        "admin_cert = \"{}\"\nadmin_key = \"{}\"\n",
        pki.toml("server.crt"),
        pki.toml("server.key")
    ));
    assert_eq!(
        tls_only.status.code(),
        Some(78),
        "TLS without client certificates: {tls_only:?}"
    );
    let verified = remote(&format!(
        "admin_cert = \"{}\"\nadmin_key = \"{}\"\nadmin_client_ca = \"{}\"\n",
        pki.toml("server.crt"),
        pki.toml("server.key"),
        pki.toml("ca.crt")
    ));
    assert!(verified.status.success(), "{verified:?}");
    let accepted = remote("admin_allow_unverified_remote = true\n");
    assert!(accepted.status.success(), "{accepted:?}");
}

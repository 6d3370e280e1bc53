//! The kit cleans up after itself and its set-ups behave as documented.

#![allow(clippy::unwrap_used)]

use std::net::TcpStream;
use std::time::{Duration, Instant};

use testkit::{FakeServer, Registry, RegistryAuth, Reply};

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn drop_stops_the_registry() {
    let registry = Registry::anonymous();
    let port = registry.port();
    let dir = registry.dir().to_owned();
    assert!(listening(port));
    drop(registry);
    assert!(!listening(port), "port {port} still answers");
    assert!(!dir.exists(), "{} not removed", dir.display());
}

#[test]
fn a_panicking_test_still_stops_the_registry() {
    let mut port = 0;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let registry = Registry::basic();
        port = registry.port();
        panic!("test failed while the registry ran");
    }));
    assert!(result.is_err());
    assert!(port != 0 && !listening(port), "port {port} still answers");
}

#[test]
fn stop_and_start_keep_port_and_data() {
    let mut registry = Registry::builder(RegistryAuth::Anonymous)
        .extra_config("log:\n  level: warn\n")
        .start();
    let port = registry.port();
    assert!(
        std::fs::read_to_string(registry.config_path())
            .unwrap()
            .contains("level: warn")
    );
    registry.stop();
    assert!(!registry.is_running() && !listening(port));
    registry.start();
    assert!(registry.is_running() && listening(port));
    assert_eq!(registry.port(), port);
}

#[test]
fn basic_and_token_registries_have_the_default_user() {
    for registry in [Registry::basic(), Registry::token()] {
        let user = registry.user().unwrap();
        assert_eq!(user.username, Registry::DEFAULT_USER);
        let authorization = registry.authorization("a/b").unwrap();
        let scheme = if registry.auth() == RegistryAuth::Token {
            "Bearer "
        } else {
            "Basic "
        };
        assert!(authorization.starts_with(scheme), "{authorization}");
    }
    assert!(Registry::anonymous().user().is_none());
}

#[test]
fn dropping_a_fake_server_ends_hanging_answers() {
    let server = FakeServer::start(|_, _| Reply::hang());
    let url = server.url();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(url.socket_addrs(|| None).unwrap()[0]).unwrap();
        std::io::Write::write_all(&mut stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut buf);
        buf
    });
    while server.requests().is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    drop(server);
    assert!(
        client.join().unwrap().is_empty(),
        "no answer, connection closed"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

//! Binding listeners on loopback: port 0 across threads, the stale-holder probe, V6ONLY.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;
use wsport_server_common::{
    bind_listeners, configure_stream, BindError, ListenSpec, PortHolder, ServerArgs, ServerConfig,
};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn config(urls: &[&str], threads: usize) -> ServerConfig {
    let mut args = vec![
        "server".to_owned(),
        "--no-pin".into(),
        "--threads".into(),
        threads.to_string(),
    ];
    for url in urls {
        args.extend(["--listen".to_owned(), url.to_string()]);
    }
    Cli::parse_from(args)
        .server
        .into_config_with_env(None)
        .expect("config")
}

fn bound(cfg: &ServerConfig) -> Vec<Vec<(ListenSpec, TcpListener)>> {
    bind_listeners(cfg).unwrap_or_else(|e| panic!("bind_listeners: {e}"))
}

/// Accepts one connection on whichever of the (nonblocking) listeners the kernel chose.
fn accept_any(listeners: &[&TcpListener]) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for l in listeners {
            match l.accept() {
                Ok((stream, _)) => return stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
        assert!(Instant::now() < deadline, "no connection arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn port_0_gives_every_thread_the_same_real_port() {
    let cfg = config(&["ws://127.0.0.1:0", "ws://127.0.0.1:0"], 2);
    let threads = bound(&cfg);
    assert_eq!(threads.len(), 2);
    assert!(threads.iter().all(|listeners| listeners.len() == 2));
    for ((spec0, l0), (spec1, l1)) in threads[0].iter().zip(&threads[1]) {
        let port = spec0.addr.port();
        assert_ne!(port, 0, "the spec carries the real port");
        assert_eq!(spec1, spec0);
        assert_eq!(l0.local_addr().unwrap(), spec0.addr);
        assert_eq!(l1.local_addr().unwrap(), spec0.addr);
        assert_eq!(spec0.to_string(), format!("ws://127.0.0.1:{port}"));
    }
    assert_ne!(
        threads[0][0].0.addr.port(),
        threads[0][1].0.addr.port(),
        "two port-0 specs, two ports"
    );

    // Listeners are nonblocking, and a client reaches one of them.
    let (spec, l0) = &threads[0][0];
    let l1 = &threads[1][0].1;
    assert_eq!(
        l0.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let client = TcpStream::connect(spec.addr).expect("connect");
    let server_side = accept_any(&[l0, l1]);
    assert!(
        server_side.nodelay().unwrap(),
        "Linux copies TCP_NODELAY from the listener"
    );
    configure_stream(&server_side).expect("configure_stream");
    assert!(server_side.nodelay().unwrap());
    drop(client);
}

#[test]
fn a_plain_listener_on_the_port_is_named_by_pid() {
    // std's listener has SO_REUSEADDR but not SO_REUSEPORT, like most other servers.
    let stale = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = stale.local_addr().unwrap().port();
    let cfg = config(&[&format!("ws://127.0.0.1:{port}")], 2);
    let e = bind_listeners(&cfg).expect_err("the port is taken");
    let msg = e.to_string();
    let pid = std::process::id();
    assert!(
        matches!(&e, BindError::AddrInUse { holder: PortHolder::Process { pid: p, .. }, .. } if *p == pid),
        "{e:?}"
    );
    assert!(
        msg.starts_with(&format!(
            "port {port} (127.0.0.1:{port}) is already in use by pid {pid} ("
        )),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[test]
fn our_own_reuseport_listener_is_not_silently_shared() {
    // Without the probe, a second SO_REUSEPORT bind would succeed and split the traffic.
    let cfg = config(&["ws://127.0.0.1:0"], 1);
    let first = bound(&cfg);
    let port = first[0][0].0.addr.port();
    let again = config(&[&format!("ws://127.0.0.1:{port}")], 1);
    let e = bind_listeners(&again).expect_err("the port is ours already");
    assert!(matches!(e, BindError::AddrInUse { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("port {port}"))
            && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    // A wildcard bind overlaps the loopback listener, too.
    let wildcard = config(&[&format!("ws://0.0.0.0:{port}")], 1);
    assert!(matches!(
        bind_listeners(&wildcard),
        Err(BindError::AddrInUse { .. })
    ));
    drop(first);
    // Once it is gone the port is free again (no TIME_WAIT: nothing was connected).
    bound(&again);
}

#[test]
fn a_fixed_free_port_binds_on_every_thread() {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let cfg = config(&[&format!("ws://127.0.0.1:{port}")], 3);
    let threads = bound(&cfg);
    assert_eq!(threads.len(), 3);
    for listeners in &threads {
        assert_eq!(listeners.len(), 1);
        assert_eq!(listeners[0].1.local_addr().unwrap().port(), port);
    }
}

#[test]
fn an_address_not_on_this_host_says_so() {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never a local address.
    let cfg = config(&["ws://192.0.2.1:0"], 1);
    let e = bind_listeners(&cfg).expect_err("not ours");
    assert!(matches!(e, BindError::AddrNotAvailable { .. }), "{e:?}");
    assert!(e.to_string().contains("not an address of this host"), "{e}");
}

#[test]
fn ipv6_listeners_are_v6only() {
    // A plain (non-REUSEPORT) IPv4 wildcard listener: only a V6ONLY socket can share its port.
    let v4 = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = v4.local_addr().unwrap().port();
    let v6 = config(&[&format!("ws://[::]:{port}")], 1);
    match bind_listeners(&v6) {
        Ok(threads) => {
            let addr: SocketAddr = threads[0][0].1.local_addr().unwrap();
            assert!(addr.is_ipv6() && addr.port() == port);
        }
        // Hosts without IPv6 (some containers) cannot run this test.
        Err(BindError::AddrNotAvailable { .. }) => {}
        Err(BindError::Io { source, .. }) if source.raw_os_error() == Some(libc::EAFNOSUPPORT) => {}
        Err(e) => panic!("[::]:{port} beside 0.0.0.0:{port} must bind with IPV6_V6ONLY: {e}"),
    }
}

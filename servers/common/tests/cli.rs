//! The shared flags: listen URLs, WSPORT_LISTEN fallback, values and how they fit together.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use wsport_server_common::cli::{format_cpu_list, resolve_pinning};
use wsport_server_common::listen::{parse_listen_list, resolve_listeners};
use wsport_server_common::{ConfigError, ListenSpec, ListenSpecError, Scheme, ServerArgs};

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn parse(args: &[&str]) -> Result<ServerArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("server").chain(args.iter().copied())).map(|c| c.server)
}

fn spec(url: &str) -> ListenSpec {
    url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn good_listen_urls() {
    let cases = [
        ("ws://0.0.0.0:8080", Scheme::Ws, "0.0.0.0:8080"),
        ("wss://127.0.0.1:443", Scheme::Wss, "127.0.0.1:443"),
        ("ws://[::1]:9000", Scheme::Ws, "[::1]:9000"),
        ("wss://[::]:8443/", Scheme::Wss, "[::]:8443"),
        ("ws://localhost:0", Scheme::Ws, "127.0.0.1:0"),
        (
            "WS://LOCALHOST:80/some/path?x=1",
            Scheme::Ws,
            "127.0.0.1:80",
        ),
        ("  ws://10.1.2.3:65535  ", Scheme::Ws, "10.1.2.3:65535"),
    ];
    for (url, scheme, expected) in cases {
        let got = spec(url);
        assert_eq!((got.scheme, got.addr), (scheme, addr(expected)), "{url}");
    }
    assert_eq!(spec("wss://[::1]:8443/x").to_string(), "wss://[::1]:8443");
}

#[test]
fn bad_listen_urls_say_what_is_wrong() {
    type IsExpected = fn(&ListenSpecError) -> bool;
    let cases: [(&str, IsExpected); 10] = [
        ("0.0.0.0:8080", |e| {
            matches!(e, ListenSpecError::MissingScheme { .. })
        }),
        ("http://0.0.0.0:8080", |e| {
            matches!(e, ListenSpecError::UnsupportedScheme { .. })
        }),
        ("ws://0.0.0.0", |e| {
            matches!(e, ListenSpecError::MissingPort { .. })
        }),
        ("ws://0.0.0.0:", |e| {
            matches!(e, ListenSpecError::MissingPort { .. })
        }),
        ("ws://0.0.0.0:65536", |e| {
            matches!(e, ListenSpecError::BadPort { .. })
        }),
        ("ws://0.0.0.0:+80", |e| {
            matches!(e, ListenSpecError::BadPort { .. })
        }),
        ("ws://example.com:80", |e| {
            matches!(e, ListenSpecError::BadHost { .. })
        }),
        ("ws://::1:80", |e| {
            matches!(e, ListenSpecError::BadHost { .. })
        }),
        ("ws://[::1:80", |e| {
            matches!(e, ListenSpecError::BadHost { .. })
        }),
        ("ws://[127.0.0.1]:80", |e| {
            matches!(e, ListenSpecError::BadHost { .. })
        }),
    ];
    for (url, is_expected) in cases {
        let e = url.parse::<ListenSpec>().expect_err(url);
        assert!(is_expected(&e), "{url}: {e:?}");
        assert!(
            e.to_string().contains(&format!("{url:?}")),
            "message must quote the URL: {e}"
        );
    }
}

#[test]
fn bad_listen_flag_is_a_clap_error_naming_the_url() {
    let e = parse(&["--listen", "tcp://1.2.3.4:5"]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("tcp://1.2.3.4:5") && msg.contains("--listen"),
        "{msg}"
    );
}

#[test]
fn listen_flags_win_over_env_and_env_over_default() {
    let flags = vec![spec("ws://127.0.0.1:1")];
    assert_eq!(
        resolve_listeners(flags.clone(), Some("ws://127.0.0.1:2")).unwrap(),
        flags
    );
    assert_eq!(
        resolve_listeners(vec![], Some("ws://127.0.0.1:2, wss://[::1]:3,")).unwrap(),
        vec![spec("ws://127.0.0.1:2"), spec("wss://[::1]:3")]
    );
    for absent in [None, Some(""), Some("  ")] {
        assert_eq!(
            resolve_listeners(vec![], absent).unwrap(),
            vec![spec("ws://0.0.0.0:8080")]
        );
    }
    assert!(matches!(
        resolve_listeners(vec![], Some("ws://127.0.0.1:2,nonsense")),
        Err(ListenSpecError::MissingScheme { .. })
    ));
    assert!(matches!(
        parse_listen_list(","),
        Err(ListenSpecError::Empty { .. })
    ));
}

#[test]
fn bad_env_listen_is_named_as_such() {
    let args = parse(&["--no-pin"]).unwrap();
    let e = args
        .into_config_with_env(Some("ws://nowhere:1"))
        .unwrap_err();
    assert!(matches!(e, ConfigError::ListenEnv(_)));
    let msg = e.to_string();
    assert!(
        msg.starts_with("WSPORT_LISTEN: ") && msg.contains("ws://nowhere:1"),
        "{msg}"
    );
}

#[test]
fn defaults() {
    let config = parse(&["--no-pin"])
        .unwrap()
        .into_config_with_env(None)
        .unwrap();
    assert_eq!(config.listeners, vec![spec("ws://0.0.0.0:8080")]);
    assert_eq!(config.threads, 1);
    assert_eq!(config.pin, None);
    assert!(config.tls.is_none());
    assert_eq!(config.handshake_timeout, Duration::from_secs(10));
    assert_eq!(config.idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(config.max_header_bytes, 8192);
    assert_eq!(config.max_frame_bytes, 16 * 1024 * 1024);
    assert_eq!(config.max_message_bytes, 64 * 1024 * 1024);
    assert_eq!(config.max_connections, 100_000);
    assert!(config.allow_origins.is_empty() && config.subprotocols.is_empty());
    assert_eq!(config.auth_token, None);
    assert_eq!(config.ping_interval, None);
    assert_eq!(config.ping_timeout, Duration::ZERO);
    assert_eq!(config.stats_interval, None);
    assert_eq!(config.shutdown_timeout, Duration::from_secs(2));
    assert_eq!(config.backlog, 4096);
}

#[test]
fn every_flag_lands_in_the_config() {
    let config = parse(&[
        "--listen",
        "ws://127.0.0.1:0",
        "--listen",
        "ws://127.0.0.1:9001",
        "--threads",
        "3",
        "--no-pin",
        "--handshake-timeout",
        "500ms",
        "--idle-timeout",
        "0",
        "--max-header-bytes",
        "16KiB",
        "--max-frame-bytes",
        "1MiB",
        "--max-message-bytes",
        "2097152",
        "--max-connections",
        "7",
        "--allow-origin",
        "https://a.example",
        "--allow-origin",
        "https://b.example",
        "--auth-token",
        "s3cret",
        "--subprotocol",
        "echo",
        "--subprotocol",
        "chat.v2",
        "--ping-interval",
        "2m",
        "--stats",
        "1s",
        "--shutdown-timeout",
        "0",
        "--backlog",
        "128",
    ])
    .unwrap()
    .into_config_with_env(Some("ws://127.0.0.1:5"))
    .unwrap();
    assert_eq!(
        config.listeners,
        vec![spec("ws://127.0.0.1:0"), spec("ws://127.0.0.1:9001")]
    );
    assert_eq!(config.threads, 3);
    assert_eq!(config.handshake_timeout, Duration::from_millis(500));
    assert_eq!(config.idle_timeout, None);
    assert_eq!(config.max_header_bytes, 16384);
    assert_eq!(config.max_frame_bytes, 1 << 20);
    assert_eq!(config.max_message_bytes, 2 << 20);
    assert_eq!(config.max_connections, 7);
    assert_eq!(
        config.allow_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(config.auth_token.as_deref(), Some("s3cret"));
    assert_eq!(config.subprotocols, ["echo", "chat.v2"]);
    assert_eq!(config.ping_interval, Some(Duration::from_secs(120)));
    assert_eq!(
        config.ping_timeout,
        Duration::from_secs(120),
        "defaults to the interval"
    );
    assert_eq!(config.stats_interval, Some(Duration::from_secs(1)));
    assert_eq!(config.shutdown_timeout, Duration::ZERO);
    assert_eq!(config.backlog, 128);
}

#[test]
fn ping_timeout_rules() {
    let c = parse(&["--no-pin", "--ping-interval", "10s", "--ping-timeout", "3s"])
        .unwrap()
        .into_config_with_env(None)
        .unwrap();
    assert_eq!(
        (c.ping_interval, c.ping_timeout),
        (Some(Duration::from_secs(10)), Duration::from_secs(3))
    );
    let e = parse(&["--no-pin", "--ping-timeout", "3s"])
        .unwrap()
        .into_config_with_env(None)
        .unwrap_err();
    assert!(matches!(e, ConfigError::PingTimeoutWithoutInterval), "{e}");
}

#[test]
fn bad_values_are_refused_with_the_flag_named() {
    // Syntax errors come from clap, naming the flag and quoting the value.
    for (flag, value) in [
        ("--handshake-timeout", "10"),
        ("--idle-timeout", "soon"),
        ("--max-frame-bytes", "16 megs"),
        ("--cpus", "0,a"),
        ("--threads", "two"),
    ] {
        let e = parse(&[flag, value]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(flag) && msg.contains(value),
            "{flag} {value}: {msg}"
        );
    }
    // Range errors come from into_config, naming the flag.
    for args in [
        &["--threads", "0"][..],
        &["--handshake-timeout", "0"],
        &["--max-header-bytes", "0"],
        &["--max-frame-bytes", "0"],
        &["--max-message-bytes", "0"],
        &["--max-connections", "0"],
        &["--backlog", "0"],
        &["--backlog", "4294967296"],
        &["--auth-token", "has space"],
        &["--auth-token", ""],
        &["--subprotocol", "bad,name"],
        &["--allow-origin", ""],
    ] {
        let mut all = vec!["--no-pin"];
        all.extend_from_slice(args);
        let e = parse(&all).unwrap().into_config_with_env(None).unwrap_err();
        assert!(e.to_string().contains(args[0]), "{args:?}: {e}");
    }
}

#[test]
fn duplicate_listen_addresses_are_refused_but_port_0_may_repeat() {
    let e = parse(&[
        "--no-pin",
        "--listen",
        "ws://127.0.0.1:9000",
        "--listen",
        "wss://127.0.0.1:9000",
    ])
    .unwrap()
    .into_config_with_env(None)
    .unwrap_err();
    assert!(matches!(e, ConfigError::DuplicateListen { .. }), "{e}");
    assert!(e.to_string().contains("127.0.0.1:9000"));
    parse(&[
        "--no-pin",
        "--listen",
        "ws://127.0.0.1:0",
        "--listen",
        "ws://127.0.0.1:0",
    ])
    .unwrap()
    .into_config_with_env(None)
    .expect("port 0 twice is two free ports");
}

#[test]
fn cert_and_key_go_together() {
    assert!(
        parse(&["--cert", "c.pem"]).is_err(),
        "clap requires --key with --cert"
    );
    assert!(
        parse(&["--key", "k.pem"]).is_err(),
        "clap requires --cert with --key"
    );
    let e = parse(&[
        "--no-pin",
        "--listen",
        "ws://127.0.0.1:0",
        "--cert",
        "c.pem",
        "--key",
        "k.pem",
    ])
    .unwrap()
    .into_config_with_env(None)
    .unwrap_err();
    assert!(matches!(e, ConfigError::CertWithoutWss { .. }), "{e}");
}

#[test]
fn wss_without_cert_gets_a_self_signed_one() {
    let c = parse(&[
        "--no-pin",
        "--listen",
        "wss://127.0.0.1:0",
        "--listen",
        "ws://127.0.0.1:0",
    ])
    .unwrap()
    .into_config_with_env(None)
    .unwrap();
    let tls = c.tls.expect("tls config for the wss listener");
    assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn missing_cert_file_is_named() {
    let e = parse(&[
        "--no-pin",
        "--listen",
        "wss://127.0.0.1:0",
        "--cert",
        "/nonexistent/wsport-cert.pem",
        "--key",
        "/nonexistent/wsport-key.pem",
    ])
    .unwrap()
    .into_config_with_env(None)
    .unwrap_err();
    assert!(matches!(e, ConfigError::Tls(_)), "{e}");
    assert!(
        e.to_string().contains("/nonexistent/wsport-cert.pem"),
        "{e}"
    );
}

#[test]
fn pinning_resolution() {
    let allowed = [0, 1, 2, 3, 6];
    assert_eq!(resolve_pinning(3, None, &allowed).unwrap(), vec![0, 1, 2]);
    assert_eq!(
        resolve_pinning(7, None, &allowed).unwrap(),
        vec![0, 1, 2, 3, 6, 0, 1]
    );
    assert_eq!(
        resolve_pinning(3, Some(&[6, 2]), &allowed).unwrap(),
        vec![6, 2, 6]
    );
    let e = resolve_pinning(2, Some(&[0, 5]), &allowed).unwrap_err();
    assert!(
        matches!(e, ConfigError::CpuNotAllowed { cpu: 5, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("0-3,6"), "{e}");
    assert!(resolve_pinning(1, None, &[]).is_err());
    assert_eq!(format_cpu_list(&[3, 0, 1, 7, 2, 9, 8]), "0-3,7-9");
}

#[test]
fn default_pinning_follows_the_affinity_mask() {
    let allowed = wsport_server_common::allowed_cpus();
    let c = parse(&["--threads", "2"])
        .unwrap()
        .into_config_with_env(None)
        .unwrap();
    let pin = c.pin.clone().expect("pinning is on by default");
    assert_eq!(pin, vec![allowed[0], allowed[1 % allowed.len()]]);
    assert_eq!(c.cpu_for_thread(1), Some(pin[1]));
    assert!(
        parse(&["--no-pin", "--cpus", "0"]).is_err(),
        "--no-pin conflicts with --cpus"
    );
    let c = parse(&["--cpus", &allowed[0].to_string()])
        .unwrap()
        .into_config_with_env(None)
        .unwrap();
    assert_eq!(c.pin, Some(vec![allowed[0]]));
}

//! Counters: per-thread sums and the documented JSON line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wsport_server_common::{snapshot, Counters, ErrorKind, Stats, StatsKind};

#[test]
fn snapshot_sums_all_threads() {
    let a = Counters::new();
    let b = Counters::new();
    a.connection_opened();
    a.connection_opened();
    a.connection_closed();
    b.connection_opened();
    a.add_messages(3);
    b.message_in();
    b.message_out();
    b.message_out();
    a.add_bytes_in(100);
    b.add_bytes_in(23);
    b.add_bytes_out(7);
    a.timer_armed();
    b.timer_armed();
    b.timer_armed();
    a.error(ErrorKind::TooBig);
    b.error(ErrorKind::TooBig);
    b.error(ErrorKind::OverCapacity);
    b.error(ErrorKind::Protocol);

    let s = snapshot(&[a, b]);
    assert_eq!(s.kind, StatsKind::Stats);
    assert_eq!((s.connections_open, s.connections_total), (2, 3));
    assert_eq!((s.messages_in, s.messages_out), (4, 5));
    assert_eq!((s.bytes_in, s.bytes_out), (123, 7));
    assert_eq!(s.timer_arms, 3);
    assert_eq!(s.errors.too_big, 2);
    assert_eq!(s.errors.over_capacity, 1);
    assert_eq!(s.errors.protocol, 1);
    assert_eq!(s.errors.total(), 4);
    assert_eq!(snapshot(&[]).connections_total, 0);
}

#[test]
fn each_error_kind_has_its_own_counter() {
    for (i, &kind) in ErrorKind::ALL.iter().enumerate() {
        let c = Counters::new();
        for _ in 0..=i {
            c.error(kind);
        }
        let s = snapshot(&[c]);
        assert_eq!(s.errors.get(kind), i as u64 + 1, "{kind:?}");
        assert_eq!(
            s.errors.total(),
            i as u64 + 1,
            "{kind:?} counted elsewhere too"
        );
    }
}

#[test]
fn json_line_has_the_documented_fields() {
    let c = Counters::new();
    c.connection_opened();
    c.error(ErrorKind::InvalidUtf8);
    let started = Instant::now() - Duration::from_millis(1234);
    let line = snapshot(&[Arc::clone(&c)])
        .at(StatsKind::Stats, started)
        .to_json_line();
    assert!(!line.contains('\n'));
    assert!(
        line.starts_with(r#"{"type":"stats","uptime_s":1.23"#),
        "{line}"
    );

    let v: Value = serde_json::from_str(&line).unwrap();
    let top = [
        "type",
        "uptime_s",
        "connections_open",
        "connections_total",
        "messages_in",
        "messages_out",
        "bytes_in",
        "bytes_out",
        "timer_arms",
        "errors",
    ];
    let errors = [
        "handshake_rejected",
        "protocol",
        "invalid_utf8",
        "too_big",
        "handshake_timeout",
        "idle_timeout",
        "ping_timeout",
        "tls",
        "io",
        "over_capacity",
        "too_slow",
    ];
    assert_eq!(v.as_object().unwrap().len(), top.len(), "{line}");
    assert_eq!(
        v["errors"].as_object().unwrap().len(),
        errors.len(),
        "{line}"
    );
    // Present, and in the documented order (serde_json's Map would sort them, so read the text).
    let positions: Vec<usize> = top
        .iter()
        .chain(errors.iter())
        .map(|key| {
            line.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing: {line}"))
        })
        .collect();
    assert!(
        positions[..top.len()].windows(2).all(|w| w[0] < w[1]),
        "{line}"
    );
    assert!(
        positions[top.len()..].windows(2).all(|w| w[0] < w[1]),
        "{line}"
    );
    let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, errors, "ErrorKind::as_str matches the JSON names");
    assert_eq!(v["connections_open"], 1);
    assert_eq!(v["errors"]["invalid_utf8"], 1);
    let uptime = v["uptime_s"].as_f64().unwrap();
    assert!((1.234..1.3).contains(&uptime), "{uptime}");

    let last = snapshot(&[c]).at(StatsKind::Final, started);
    let v: Value = serde_json::from_str(&last.to_json_line()).unwrap();
    assert_eq!(v["type"], "final");
    let back: Stats = serde_json::from_value(v).unwrap();
    assert_eq!(back, last);
}

//! How connections ended (`results.endings`), against the real `wsport-tokio` binary: a
//! server that closes idle connections (its `--idle-timeout`, close 1001 "idle timeout",
//! RFC 6455 §7.4.1) against `hold --ping-interval off`, and the same server kept busy by
//! pings, whose connections last until the client's own close handshake.

mod common;

use common::Server;
use wsport_bench::endings::EndingRecord;
use wsport_bench::{run, Opts, Report};

fn hold(url: &str, ping_interval: &str, duration: &str) -> Report {
    use clap::Parser;
    let argv = [
        "wsport-bench",
        "hold",
        "--quiet",
        "--url",
        url,
        "--insecure",
        "-c",
        "20",
        "--ping-interval",
        ping_interval,
        "--duration",
        duration,
        "--warmup",
        "100ms",
    ];
    run(&Opts::try_parse_from(argv).expect("valid options")).expect("run")
}

fn only_ending(report: &Report) -> &EndingRecord {
    let endings = &report.results.endings;
    assert_eq!(endings.by.len(), 1, "one kind of ending: {endings:#?}");
    &endings.by[0]
}

#[test]
fn silent_connections_are_closed_by_the_servers_idle_timeout_and_recorded_so() {
    let server = Server::start(&["--idle-timeout", "1s"]);
    for url in [format!("{}/", server.ws), format!("{}/", server.wss)] {
        let report = hold(&url, "off", "3s");
        assert_eq!(report.results.sent, 0, "--ping-interval off sends no ping");
        assert_eq!(report.results.endings.total, 20);
        let e = only_ending(&report);
        assert_eq!(e.ending, "server_close_1001", "{e:#?}");
        assert_eq!(e.count, 20);
        assert_eq!(e.detail, "reason \"idle timeout\"");
        let life = e.after_open_ms.as_ref().expect("they had opened");
        // Not a connection cut early: the server counts its idle timeout from the upgrade
        // request it read, a little before the client saw the 101, so allow for the gap.
        assert!(life.min >= 500, "closed {} ms after opening", life.min);
        assert!(report.scenario.contains("-pingoff-"), "{}", report.scenario);
    }
}

#[test]
fn pinged_connections_last_until_the_clients_close() {
    let server = Server::start(&["--idle-timeout", "1s"]);
    let report = hold(&format!("{}/", server.wss), "200ms", "2s");
    let e = only_ending(&report);
    assert_eq!((e.ending.as_str(), e.count), ("client_close", 20), "{e:#?}");
    let life = e.after_open_ms.as_ref().expect("they had opened");
    assert!(life.min >= 2000, "the window is 2 s: {} ms", life.min);
    assert!(report.results.messages > 0, "pongs came back");
}

#[test]
fn a_server_that_dies_leaves_eof_or_reset_endings() {
    let mut server = Server::start(&[]);
    let url = format!("{}/", server.ws);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(800));
        server.kill();
    });
    let report = hold(&url, "100ms", "3s");
    killer.join().expect("killer");
    let endings = &report.results.endings;
    assert_eq!(endings.total, 20, "{endings:#?}");
    let cut: u64 = endings
        .by
        .iter()
        .filter(|e| e.ending == "eof" || e.ending == "reset")
        .map(|e| e.count)
        .sum();
    assert_eq!(
        cut, 20,
        "every connection ended with the server's death: {endings:#?}"
    );
}

//! The RSS check end to end: wsport-abuse against wsport-tokio holding never-read clients that
//! send 1 MiB frames. With the server's true --max-frame-bytes the check passes; told a frame
//! limit 64 times smaller than the frames the server really holds, it must fail (exit 3). Over
//! wss every server is checked the same way, with the small read-ahead its bounded reads allow
//! (rss.rs, `WSS_READ_AHEAD`); servers/common's session_wss.rs checks that bound on the
//! buffer itself, which a run on a busy host may not press.

mod common;

use std::process::Command;

/// Run wsport-abuse's never-read clients sending `frames` against `server`, claiming
/// `claimed_frame` as the server's frame limit, with `extra` flags (`--rss-slack 1MiB` unless
/// they give one); returns the exit code and the output.
fn abuse(
    server: &common::Server,
    frames: &str,
    claimed_frame: &str,
    extra: &[&str],
) -> (i32, String) {
    let slack: &[&str] = if extra.contains(&"--rss-slack") {
        &[]
    } else {
        &["--rss-slack", "1MiB"]
    };
    let output = Command::new(env!("CARGO_BIN_EXE_wsport-abuse"))
        .args([
            "run",
            "--addr",
            &server.addr.to_string(),
            "--kinds",
            "never-read",
        ])
        .args(extra)
        .args([
            "--never-read",
            "16",
            "--never-read-frame-bytes",
            frames,
            "--duration",
            "4s",
        ])
        .args(["--server-pid", &server.child.id().to_string()])
        .args(["--max-frame-bytes", claimed_frame])
        .args(slack)
        .output()
        .expect("run wsport-abuse");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn rss_stays_under_the_bound_of_the_true_limits() {
    let server = common::start("tokio", &["--max-frame-bytes", "1MiB"]).unwrap();
    let (code, text) = abuse(&server, "1MiB", "1MiB", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("within the bound"), "{text}");
}

#[test]
fn an_understated_limit_fails_the_check() {
    let server = common::start("tokio", &["--max-frame-bytes", "1MiB"]).unwrap();
    let (code, text) = abuse(&server, "1MiB", "16KiB", &[]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("OVER the bound"), "{text}");
}

/// Every server over wss, with 1 MiB frames (a reply that outgrows the buffer it answers is
/// what once let reads grow), each against its own bound: the reads of all of them are
/// bounded by the same shared code (servers/common session.rs). wsport-uring's per-thread spill
/// pool (4 MiB) and buffer ring (1 MiB) are no connection's and come as slack.
#[test]
fn rss_over_wss_stays_under_the_bound_with_its_read_ahead() {
    let mut failures = Vec::new();
    for (config, _, _) in common::SERVERS {
        let server = match common::start_on(config, "wss", &["--max-frame-bytes", "1MiB"]) {
            Ok(server) => server,
            Err(reason) => {
                eprintln!("{config}: skipped: {reason}");
                continue;
            }
        };
        let slack = if config == "uring" { "6MiB" } else { "256KiB" };
        let (code, text) = abuse(&server, "1MiB", "1MiB", &["--wss", "--rss-slack", slack]);
        eprintln!("{config}:\n{text}");
        if code != 0 || !text.contains("within the bound") {
            failures.push(format!("{config}: exit {code}\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

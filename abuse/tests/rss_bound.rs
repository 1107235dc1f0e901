//! The RSS check end to end: wsport-abuse against wsport-tokio holding never-read clients that
//! send 1 MiB frames. With the server's true --max-frame-bytes the check passes; told a frame
//! limit 64 times smaller than the frames the server really holds, it must fail (exit 3). Over
//! wss, never-read clients make the server read ahead megabytes whatever its frame limit
//! (rss.rs, `WSS_READ_AHEAD`): with a 16 KiB limit the frame-bound terms allow 128 KiB a
//! client and the server took about 2 MiB each, so the check passes only with that allowance.

mod common;

use std::process::Command;

/// Run wsport-abuse's never-read clients sending `frames` against `server`, claiming
/// `claimed_frame` as the server's frame limit, with `extra` flags; returns the exit code and
/// the output.
fn abuse(
    server: &common::Server,
    frames: &str,
    claimed_frame: &str,
    extra: &[&str],
) -> (i32, String) {
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
        .args(["--max-frame-bytes", claimed_frame, "--rss-slack", "1MiB"])
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

#[test]
fn rss_over_wss_stays_under_the_bound_with_its_read_ahead() {
    let server = common::start_on("tokio", "wss", &["--max-frame-bytes", "16KiB"]).unwrap();
    let (code, text) = abuse(&server, "16KiB", "16KiB", &["--wss"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("within the bound"), "{text}");
}

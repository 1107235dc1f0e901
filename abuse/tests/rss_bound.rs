//! The RSS check end to end: wsport-abuse against wsport-tokio holding never-read clients that
//! send 1 MiB frames. With the server's true --max-frame-bytes the check passes; told a frame
//! limit 64 times smaller than the frames the server really holds, it must fail (exit 3).

mod common;

use std::process::Command;

/// Run wsport-abuse's never-read clients against `server`, claiming `claimed_frame` as the
/// server's frame limit; returns the exit code and the output.
fn abuse(server: &common::Server, claimed_frame: &str) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wsport-abuse"))
        .args([
            "run",
            "--addr",
            &server.addr.to_string(),
            "--kinds",
            "never-read",
        ])
        .args([
            "--never-read",
            "16",
            "--never-read-frame-bytes",
            "1MiB",
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
    let (code, text) = abuse(&server, "1MiB");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("within the bound"), "{text}");
}

#[test]
fn an_understated_limit_fails_the_check() {
    let server = common::start("tokio", &["--max-frame-bytes", "1MiB"]).unwrap();
    let (code, text) = abuse(&server, "16KiB");
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("OVER the bound"), "{text}");
}

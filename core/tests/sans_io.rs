//! The core stays sans-IO provably: no runtime, socket or clock crate among its dependencies.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "tokio-uring",
    "monoio",
    "mio",
    "socket2",
    "async-std",
    "io-uring",
    "libc",
];

#[test]
fn core_depends_on_no_runtime_or_socket_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "wsport-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("utf-8");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"wsport-core"),
        "unexpected cargo tree output: {tree}"
    );
    for name in FORBIDDEN {
        assert!(
            !crates.contains(name),
            "wsport-core depends on {name}:\n{tree}"
        );
    }
}

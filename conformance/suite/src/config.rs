//! Which server binaries the suite runs against.
//!
//! A [`ServerConfig`] names one way of running one binary. `WSPORT_SERVERS` (a comma list of
//! config names) picks configs explicitly, and a listed binary that is missing is an error;
//! without it, every config whose binary exists is picked. Configs that need io_uring are
//! skipped, with a notice on stderr, where io_uring cannot be set up.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use wsport_harness::sys;

/// One way of running one server binary.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Name used in `WSPORT_SERVERS` and in every failure message.
    pub name: &'static str,
    /// The cargo package that builds `binary`.
    pub package: &'static str,
    pub binary: &'static str,
    /// Arguments passed before the shared CLI flags.
    pub args: &'static [&'static str],
    pub needs_io_uring: bool,
    /// With `--threads 1` the process runs its runtime on the main thread and starts no
    /// other (`Process::this_thread` in servers/common).
    pub one_thread: bool,
    /// The oldest Linux (major, minor) whose io_uring has every feature the config asks for;
    /// older kernels skip it with the reason, as they would where io_uring is refused.
    pub min_kernel: Option<(u32, u32)>,
}

/// Every server the suite knows about.
pub const KNOWN: &[ServerConfig] = &[
    ServerConfig {
        name: "tokio",
        package: "wsport-tokio",
        binary: "wsport-tokio",
        args: &[],
        needs_io_uring: false,
        one_thread: true,
        min_kernel: None,
    },
    ServerConfig {
        name: "tokio-multi",
        package: "wsport-tokio",
        binary: "wsport-tokio",
        args: &["--flavor", "multi"],
        needs_io_uring: false,
        one_thread: false,
        min_kernel: None,
    },
    ServerConfig {
        name: "tokio-uring",
        package: "wsport-tokio-uring",
        binary: "wsport-tokio-uring",
        args: &[],
        needs_io_uring: true,
        one_thread: false,
        min_kernel: None,
    },
    ServerConfig {
        name: "monoio-uring",
        package: "wsport-monoio",
        binary: "wsport-monoio",
        args: &["--driver", "uring"],
        needs_io_uring: true,
        one_thread: true,
        min_kernel: None,
    },
    ServerConfig {
        name: "uring",
        package: "wsport-uring",
        binary: "wsport-uring",
        args: &[],
        needs_io_uring: true,
        one_thread: false,
        min_kernel: Some((6, 0)),
    },
    // The same server with its io_uring features off: single-shot accepts and receives into
    // each connection's own buffer, plain descriptors, no DEFER_TASKRUN, one enter per
    // operation. Its other code paths must be as correct as the default ones.
    ServerConfig {
        name: "uring-basic",
        package: "wsport-uring",
        binary: "wsport-uring",
        args: &[
            "--no-multishot-accept",
            "--no-buffer-ring",
            "--no-registered-files",
            "--no-defer-taskrun",
            "--no-batch-submit",
        ],
        needs_io_uring: true,
        one_thread: false,
        min_kernel: Some((5, 11)),
    },
    // monoio's io_uring driver on a ring with SINGLE_ISSUER | DEFER_TASKRUN: the setting that
    // removes its per-completion interrupts below saturation (results/2026-12-06-vm/wakeups).
    ServerConfig {
        name: "monoio-uring-dt",
        package: "wsport-monoio",
        binary: "wsport-monoio",
        args: &["--driver", "uring", "--defer-taskrun"],
        needs_io_uring: true,
        one_thread: true,
        min_kernel: Some((6, 1)),
    },
    // tokio-uring on a ring with COOP_TASKRUN (DEFER_TASKRUN would hang it).
    ServerConfig {
        name: "tokio-uring-coop",
        package: "wsport-tokio-uring",
        binary: "wsport-tokio-uring",
        args: &["--coop-taskrun"],
        needs_io_uring: true,
        one_thread: false,
        min_kernel: Some((5, 19)),
    },
    ServerConfig {
        name: "monoio-epoll",
        package: "wsport-monoio",
        binary: "wsport-monoio",
        args: &["--driver", "epoll"],
        needs_io_uring: false,
        one_thread: true,
        min_kernel: None,
    },
];

impl ServerConfig {
    pub fn path(&self) -> PathBuf {
        bin_dir().join(self.binary)
    }

    fn build_hint(&self) -> String {
        format!("build it first: cargo build -p {}", self.package)
    }
}

/// Where server binaries are looked for: `WSPORT_BIN_DIR` if set, else the profile directory
/// of the running test (tests run from `target/<profile>/deps/`, binaries sit in
/// `target/<profile>/`), so `cargo test --release` looks at release binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WSPORT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test binary has a parent")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The configs this run covers, computed once per test binary. Skip notices are printed the
/// first time; selection errors (unknown name, missing binary) are returned every time.
pub fn selected() -> Result<&'static [&'static ServerConfig], String> {
    static SELECTION: OnceLock<Result<Vec<&'static ServerConfig>, String>> = OnceLock::new();
    SELECTION
        .get_or_init(select)
        .as_deref()
        .map_err(Clone::clone)
}

fn select() -> Result<Vec<&'static ServerConfig>, String> {
    let wanted = match std::env::var("WSPORT_SERVERS") {
        Ok(list) => explicit(&list)?,
        Err(_) => {
            let found: Vec<_> = KNOWN.iter().filter(|c| c.path().exists()).collect();
            if found.is_empty() {
                return Err(nothing_built());
            }
            found
        }
    };
    let io_uring = if wanted.iter().any(|c| c.needs_io_uring) {
        sys::probe_io_uring()
    } else {
        Ok(())
    };
    let kernel = sys::kernel_version();
    let mut chosen = Vec::new();
    for config in wanted {
        match (&io_uring, config.min_kernel) {
            (Err(reason), _) if config.needs_io_uring => {
                notice(&format!(
                    "SKIP {}: io_uring unavailable: {reason}",
                    config.name
                ));
            }
            (_, Some(needs)) if kernel.is_some_and(|k| k < needs) => {
                notice(&format!(
                    "SKIP {}: io_uring feature unavailable: needs Linux ≥ {}.{}",
                    config.name, needs.0, needs.1
                ));
            }
            _ => chosen.push(config),
        }
    }
    Ok(chosen)
}

fn explicit(list: &str) -> Result<Vec<&'static ServerConfig>, String> {
    let mut configs = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let config = KNOWN.iter().find(|c| c.name == name).ok_or_else(|| {
            let known: Vec<_> = KNOWN.iter().map(|c| c.name).collect();
            format!(
                "WSPORT_SERVERS names unknown server config `{name}`; known: {}",
                known.join(", ")
            )
        })?;
        if !config.path().exists() {
            return Err(format!(
                "WSPORT_SERVERS names `{name}` but {} does not exist: {}",
                config.path().display(),
                config.build_hint()
            ));
        }
        if !configs.contains(&config) {
            configs.push(config);
        }
    }
    Ok(configs)
}

fn nothing_built() -> String {
    let mut packages: Vec<_> = KNOWN.iter().map(|c| c.package).collect();
    packages.dedup();
    let mut binaries: Vec<_> = KNOWN.iter().map(|c| c.binary).collect();
    binaries.dedup();
    format!(
        "no server binary found in {} (looked for {}): build them first: cargo build {} \
         (cargo test does not build other packages' binaries; for `cargo test --release` build \
         with --release too, or point WSPORT_BIN_DIR at the binaries)",
        bin_dir().display(),
        KNOWN
            .iter()
            .map(|c| c.binary)
            .collect::<Vec<_>>()
            .join(", "),
        packages
            .iter()
            .map(|p| format!("-p {p}"))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// A line on the real stderr, bypassing the test harness capture so skips are seen even when
/// every test passes.
pub fn notice(line: &str) {
    let _ = writeln!(std::io::stderr(), "wsport-conformance: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in KNOWN.iter().enumerate() {
            assert!(
                KNOWN[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn unknown_name_is_an_error_that_lists_known_names() {
        let err = explicit("nginx,tokio").unwrap_err();
        assert!(
            err.contains("`nginx`") && err.contains("monoio-epoll"),
            "{err}"
        );
    }

    #[test]
    fn bin_dir_is_the_profile_dir() {
        if std::env::var_os("WSPORT_BIN_DIR").is_none() {
            assert!(!bin_dir().ends_with("deps"));
        }
    }
}

//! What produced a result: host, CPU, kernel, toolchain, commit (DESIGN.md "Results are
//! documents"). Everything is best effort: a field that cannot be read is `null`, never an
//! error.
//!
//! The commit is the one this binary was built from (build.rs), not the checkout's state when
//! it runs: a benchmark rewrites results/ while it runs, and the checkout may have moved on
//! since the build, so only the build knows which code is measured.

use std::process::Command;

use serde::Serialize;

/// The machine and software a run was made with.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// wsport-bench's version.
    pub tool_version: &'static str,
    /// Host name.
    pub host: Option<String>,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// CPUs online.
    pub cpus_online: usize,
    /// CPUs this process may run on (taskset, cgroups), as a list like `0-3`.
    pub cpus_allowed: String,
    /// Kernel release.
    pub kernel: Option<String>,
    /// `rustc -V` on this machine.
    pub rustc: Option<String>,
    /// The commit wsport-bench was built from; `None` for a build outside git.
    pub git_commit: Option<String>,
    /// Whether tracked files outside results/ differed from that commit at build time;
    /// `None` for a build outside git.
    pub git_dirty: Option<bool>,
}

impl Meta {
    /// Gather (runs `rustc -V` and `git`, reads /proc).
    pub fn gather() -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            });
        Self {
            tool_version: env!("CARGO_PKG_VERSION"),
            host: read("/proc/sys/kernel/hostname"),
            cpu_model,
            // Not available_parallelism, which honours this process's affinity mask.
            cpus_online: read("/sys/devices/system/cpu/online").map_or(0, |s| count_cpu_list(&s)),
            cpus_allowed: wsport_server_common::cli::format_cpu_list(
                &wsport_server_common::allowed_cpus(),
            ),
            kernel: read("/proc/sys/kernel/osrelease"),
            rustc: output("rustc", &["-V"]),
            git_commit: BUILD_GIT_COMMIT.map(str::to_owned),
            git_dirty: BUILD_GIT_DIRTY,
        }
    }
}

/// Set by build.rs; empty outside git.
const BUILD_GIT_COMMIT: Option<&str> = non_empty(env!("WSPORT_GIT_COMMIT"));

/// Set by build.rs: `true`, `false`, or empty outside git.
const BUILD_GIT_DIRTY: Option<bool> = match env!("WSPORT_GIT_DIRTY").as_bytes() {
    b"true" => Some(true),
    b"false" => Some(false),
    _ => None,
};

const fn non_empty(s: &'static str) -> Option<&'static str> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Count the CPUs in a list like `0-3,6`.
fn count_cpu_list(list: &str) -> usize {
    wsport_server_common::units::parse_cpu_list(list.trim()).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn gathers_the_basics() {
        let m = super::Meta::gather();
        assert!(m.cpus_online >= 1);
        assert!(m.kernel.is_some());
        assert_eq!(super::count_cpu_list("0-3,6\n"), 5);
    }

    #[test]
    fn names_the_commit_it_was_built_from() {
        let m = super::Meta::gather();
        match &m.git_commit {
            Some(commit) => {
                // SHA-1 or SHA-256 object names.
                assert!(matches!(commit.len(), 40 | 64), "{commit}");
                assert!(commit.bytes().all(|b| b.is_ascii_hexdigit()), "{commit}");
                assert!(m.git_dirty.is_some());
            }
            // Built outside git (a source archive): neither is known.
            None => assert_eq!(m.git_dirty, None),
        }
    }
}

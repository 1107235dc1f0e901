//! What produced a result: host, CPU, kernel, toolchain, commit (DESIGN.md "Results are
//! documents"). Everything is best effort: a field that cannot be read is `null`, never an
//! error.

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
    /// `git rev-parse HEAD` in the current directory.
    pub git_commit: Option<String>,
    /// Whether that checkout had uncommitted changes.
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
        let git_commit = output("git", &["rev-parse", "HEAD"]);
        let git_dirty = git_commit.as_ref().and_then(|_| {
            Command::new("git")
                .args(["status", "--porcelain", "--untracked-files=no"])
                .output()
                .ok()
                .map(|o| !o.stdout.is_empty())
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
            git_commit,
            git_dirty,
        }
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
}

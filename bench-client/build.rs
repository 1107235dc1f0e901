//! Records the commit this binary is built from, so that a result names the code that ran
//! (DESIGN.md, "Results are documents"). Reading the commit when the client runs is not the
//! same thing: a benchmark writes into results/, and the checkout may have moved on since the
//! build.
//!
//! Sets, for `env!` in src/meta.rs:
//! - `WSPORT_GIT_COMMIT`: `git rev-parse HEAD`, or empty outside a git checkout;
//! - `WSPORT_GIT_DIRTY`: `true` when a tracked file outside results/ differs from that commit
//!   (staged or not), `false` when none does, empty outside git. Untracked files do not count,
//!   and neither does results/, which a benchmark run itself rewrites.
//!
//! Cargo reruns this script only when a path it names changes, so it names every input of the
//! answer and nothing else: this worktree's HEAD (a checkout), the ref HEAD points to (a
//! commit), the index (`git add`, `git rm`) and each tracked file outside results/ (an edit).
//! A commit in another git worktree of the same repository touches none of them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// results/ holds benchmark output, not code: a run that rewrites it must not flag the build.
const NOT_CODE: &str = ":(exclude)results";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let (commit, dirty) = match git(&manifest_dir, &["rev-parse", "--show-toplevel"]) {
        Some(top) => describe(Path::new(&top)),
        None => (None, None),
    };
    println!(
        "cargo:rustc-env=WSPORT_GIT_COMMIT={}",
        commit.unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=WSPORT_GIT_DIRTY={}",
        dirty.map(|d| d.to_string()).unwrap_or_default()
    );
}

/// The commit at `top` and whether the code differs from it; registers the paths to watch.
fn describe(top: &Path) -> (Option<String>, Option<bool>) {
    watch_refs(top);
    if let Some(files) = git(top, &["ls-files", "-z", "--", ".", NOT_CODE]) {
        // A tracked file that is missing (deleted, not yet `git rm`-ed) is named too: Cargo
        // then reruns this script on every build until it is back or its removal committed.
        for file in files.split('\0').filter(|f| !f.is_empty()) {
            println!("cargo:rerun-if-changed={}", top.join(file).display());
        }
    }
    let Some(commit) = git(top, &["rev-parse", "HEAD"]) else {
        return (None, None);
    };
    // --no-optional-locks: status would otherwise refresh and rewrite the index, which this
    // script watches, and so rerun itself on the next build.
    let dirty = Command::new("git")
        .args(["--no-optional-locks", "status", "--porcelain"])
        .args(["--untracked-files=no", "--", ".", NOT_CODE])
        .current_dir(top)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| !out.stdout.is_empty());
    (Some(commit), dirty)
}

/// Registers what names this checkout's commit: its own HEAD and index and the one ref HEAD
/// points to. Not the shared refs/heads folder: every git worktree of the repository shares
/// it, so watching it would rebuild this binary on a commit in any other worktree.
fn watch_refs(top: &Path) {
    // In a worktree, HEAD and index are its own (.git/worktrees/NAME/); refs are common.
    let git_path = |what: &str| git(top, &["rev-parse", "--git-path", what]).map(|p| top.join(p));
    for what in ["HEAD", "index"] {
        if let Some(path) = git_path(what) {
            watch(&path);
        }
    }
    // A detached HEAD holds the commit itself; a branch's commit is in its ref.
    let Some(branch) = git(top, &["symbolic-ref", "-q", "HEAD"]) else {
        return;
    };
    let Some(loose) = git_path(&branch) else {
        return;
    };
    if loose.exists() {
        watch(&loose);
        return;
    }
    // A packed ref (after `git gc`) lives in packed-refs until the next commit writes its loose
    // file, which appears in the folder the loose ref would be in.
    if let Some(packed) = git_path("packed-refs") {
        watch(&packed);
    }
    if let Some(folder) = loose.parent() {
        watch(folder);
    }
}

/// Rerun this script when `path` changes. A path that does not exist would make Cargo rerun it
/// on every build, so none is named.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `git ARGS` in `dir`: its trimmed output, or `None` when git is missing or fails (no
/// checkout, no commit yet).
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim_end_matches('\n');
    (!text.is_empty()).then(|| text.to_owned())
}

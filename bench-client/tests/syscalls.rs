//! `SyscallCounter` against calls made on purpose: 10,000 one-byte `write(2)`s to /dev/null
//! and 1,000 `epoll_wait(2)`s with no wait on an empty epoll instance, made by another process
//! (this test binary run again as a helper) and by threads of this process.
//!
//! Where the host cannot count (not root and perf_event_paranoid too high, no tracefs, no
//! syscall tracepoints) each test prints why and passes; with `WSPORT_REQUIRE_SYSCALLS` set it
//! fails instead, for hosts that must count. Any other error fails.

// The calls counted are made through libc directly (epoll_create1, epoll_wait, close).
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread;

use wsport_bench::report::SyscallsRecord;
use wsport_bench::syscalls::{SyscallCounter, SyscallCounts, SyscallError};

mod common;

const WRITES: u64 = 10_000;
const WAITS: u64 = 1_000;
/// Calls of the groups that the counted code makes besides ours: the pipe handshake with the
/// helper, the harness, reading the counters themselves (`read(2)`, in `recv`).
const SLACK: u64 = 200;
/// Set in the helper's environment: run the helper's calls instead of skipping it.
const HELPER: &str = "WSPORT_SYSCALLS_HELPER";

/// The tests count this whole process (and one the calls of the other): one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Counters on `pid`, or `None` (with the reason printed) where this host cannot count.
fn open_or_skip(pid: u32) -> Option<SyscallCounter> {
    match SyscallCounter::open(pid) {
        Ok(counter) => Some(counter),
        Err(
            e @ (SyscallError::NotPermitted { .. }
            | SyscallError::NoTracefs { .. }
            | SyscallError::NoTracepoint { .. }),
        ) if std::env::var_os("WSPORT_REQUIRE_SYSCALLS").is_none() => {
            eprintln!("skipped: system calls cannot be counted here: {e}");
            None
        }
        Err(e) => panic!("SyscallCounter::open({pid}): {e}"),
    }
}

/// `writes` one-byte writes to /dev/null, then `waits` epoll_waits that return at once.
fn make_calls(writes: u64, waits: u64) {
    let mut null = File::options()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    for _ in 0..writes {
        // File::write is one write(2), unbuffered.
        assert_eq!(null.write(b"x").expect("write to /dev/null"), 1);
    }
    if waits == 0 {
        return;
    }
    // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(
        epfd >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 1];
    for _ in 0..waits {
        // SAFETY: the buffer holds the one event the call may write; timeout 0 never blocks.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 1, 0) };
        assert_eq!(n, 0, "an empty epoll instance has no events");
    }
    // SAFETY: epfd is ours and closed once.
    unsafe { libc::close(epfd) };
}

fn assert_near(counts: &SyscallCounts, group: &str, made: u64) {
    let counted = counts.by_group[group];
    assert!(
        (made..=made + SLACK).contains(&counted),
        "{group}: counted {counted}, made {made} (+{SLACK} allowed): {counts:?}"
    );
}

fn assert_consistent(counts: &SyscallCounts) {
    let grouped: u64 = counts.by_group.values().sum();
    assert!(counts.total >= grouped, "{counts:?}");
    assert_eq!(counts.other, counts.total - grouped, "{counts:?}");
}

/// Not a test on its own: the other process of `counts_another_process`. It says `ready`,
/// waits for `go`, makes its calls, says `done` and waits for its stdin to close.
#[test]
fn helper() {
    if std::env::var_os(HELPER).is_none() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let mut line = String::new();
    writeln!(out, "ready").and_then(|()| out.flush()).unwrap();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
    make_calls(WRITES, WAITS);
    writeln!(out, "done").and_then(|()| out.flush()).unwrap();
    std::io::stdin().read_line(&mut line).unwrap();
}

#[test]
fn counts_another_process() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .env(HELPER, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run this test binary as the helper");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut wait_for = |word: &str| {
        let mut line = String::new();
        // libtest's "test helper ... " comes first on the same line.
        while !line.trim_end().ends_with(word) {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the helper ended before saying {word}");
        }
    };
    wait_for("ready");
    let Some(counter) = open_or_skip(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let before = counter.read().unwrap();
    writeln!(stdin, "go").unwrap();
    wait_for("done");
    let counts = counter.read().unwrap().since(&before);
    drop(stdin);
    assert!(child.wait().unwrap().success());

    eprintln!(
        "helper process, {} thread(s): {counts:?}",
        counter.threads()
    );
    assert_near(&counts, "send", WRITES);
    assert_near(&counts, "epoll_wait", WAITS);
    // The helper reads one line of ours, in one read or a few.
    assert!(counts.by_group["recv"] < SLACK, "{counts:?}");
    assert_eq!(counts.by_group["io_uring_enter"], 0, "{counts:?}");
    assert_consistent(&counts);
}

#[test]
fn counts_threads_of_this_process_old_and_new() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (go, wait) = mpsc::channel::<()>();
    let early = thread::spawn(move || {
        wait.recv().unwrap();
        make_calls(WRITES, 0);
    });
    let Some(counter) = open_or_skip(std::process::id()) else {
        drop(go);
        let _ = early.join();
        return;
    };
    let before = counter.read().unwrap();
    go.send(()).unwrap();
    early.join().unwrap();
    // Started after open, it is counted through inheritance, and its counts outlive it.
    thread::spawn(|| make_calls(0, WAITS)).join().unwrap();
    let counts = counter.read().unwrap().since(&before);

    eprintln!(
        "this process, {} thread(s) at open: {counts:?}",
        counter.threads()
    );
    assert!(counter.threads() >= 2, "the test's and the early thread");
    assert_near(&counts, "send", WRITES);
    assert_near(&counts, "epoll_wait", WAITS);
    assert_consistent(&counts);
}

#[test]
fn a_missing_process_is_named() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match SyscallCounter::open(u32::MAX) {
        Err(SyscallError::NoProcess { pid }) => assert_eq!(pid, u32::MAX),
        Err(
            e @ (SyscallError::NotPermitted { .. }
            | SyscallError::NoTracefs { .. }
            | SyscallError::NoTracepoint { .. }),
        ) => {
            eprintln!("skipped: {e}")
        }
        other => panic!("{other:?}"),
    }
}

/// The figures of a run, or `None` (with the reason printed) where this host cannot count.
fn counted_or_skip(
    record: Option<&SyscallsRecord>,
    side: &str,
) -> Option<wsport_bench::report::CallFigures> {
    match record.unwrap_or_else(|| panic!("{side}: no syscalls record")) {
        SyscallsRecord::Counted(figures) => Some(figures.clone()),
        SyscallsRecord::Unavailable { unavailable }
            if std::env::var_os("WSPORT_REQUIRE_SYSCALLS").is_none() =>
        {
            eprintln!("skipped: {side}'s system calls cannot be counted here: {unavailable}");
            None
        }
        SyscallsRecord::Unavailable { unavailable } => panic!("{side}: {unavailable}"),
    }
}

/// The known answer, through the whole run: one connection, one message at a time at 200
/// msgs/s, against an epoll server (wsport-tokio). Each message wakes the server once; it
/// reads the frame and writes the echo, then waits again: about one receive, one send and one
/// wait per message. wsport-bench's epoll engine does the same on its side.
#[test]
fn a_slow_single_connection_costs_an_epoll_server_one_receive_one_send_one_wait_per_message() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = common::Server::start(&[]);
    let url = format!("{}/", server.ws);
    let pid = server.pid().to_string();
    let args = [
        "wsport-bench",
        "rate",
        "--quiet",
        "--url",
        &url,
        "-c",
        "1",
        "--rate",
        "200",
        "--duration",
        "300ms",
        "--warmup",
        "1s",
        "--engine",
        "epoll",
        "--server-pid",
        &pid,
    ];
    let opts = <wsport_bench::Opts as clap::Parser>::try_parse_from(args).expect("options");
    let report = wsport_bench::run(&opts).expect("run");
    let results = &report.results;
    let server_calls = results
        .server
        .as_ref()
        .expect("--server-pid")
        .syscalls
        .as_ref();
    let Some(server_figures) = counted_or_skip(server_calls, "server") else {
        return;
    };
    let client_calls = results.client.as_ref().expect("client").syscalls.as_ref();
    let client_figures = counted_or_skip(client_calls, "client").expect("the server was counted");
    eprintln!("server: {server_figures:?}\nclient: {client_figures:?}");
    for (side, f) in [("server", &server_figures), ("client", &client_figures)] {
        // The last second of the warmup: ~200 messages.
        assert!((150..=250).contains(&f.messages), "{side}: {f:?}");
        assert!((0.9..=1.1).contains(&f.counted_s), "{side}: {f:?}");
        assert_eq!(f.calls["io_uring_enter"], 0, "{side}: {f:?}");
        let sends = f.per_msg_by_call["send"];
        assert!(
            (0.9..=1.3).contains(&sends),
            "{side}: {sends} sends/msg: {f:?}"
        );
    }
    let f = &server_figures;
    let receives = f.per_msg_by_call["recv"];
    assert!(
        (0.9..=1.3).contains(&receives),
        "server: {receives} receives/msg: {f:?}"
    );
    let per_wait = f.msgs_per_wait.expect("waits");
    assert!(
        (0.7..=1.1).contains(&per_wait),
        "server: {per_wait} msgs/wait: {f:?}"
    );
    // The client also waits for each message's send time (wake.rs: a sleep, then polls with
    // zero-timeout waits until the turn), so it waits at least once per message, often more.
    let client_waits = client_figures.msgs_per_wait.expect("waits");
    assert!(
        client_waits <= 1.1,
        "client: {client_waits} msgs/wait: {client_figures:?}"
    );
}

//! The server's resident memory over a run, and the bound it must stay under.
//!
//! What a wsport server holds per connection (servers/common/src/session.rs): one buffer that
//! keeps at most one frame (frames are echoed one by one, never reassembled into a message), and
//! at least `READ_CHUNK` (16 KiB) of spare room for the next read; a wss connection has a second
//! buffer for the plaintext and rustls's record buffers. A server that stops reading while its
//! reply waits (back-pressure) queues nothing more. So, with `Vec` growth at most doubling a
//! buffer:
//!
//! ```text
//! bound = RSS at start + slack
//!       + handshaking connections × (max_header_bytes + 2 × READ_CHUNK + TLS)
//!       + open connections        × (2 × (max_frame_bytes + 14) + 2 × READ_CHUNK + TLS)
//!       + never-read connections  × (the same + READ_AHEAD)
//! ```
//!
//! with TLS = 64 KiB on wss (0 on ws) and the slack for the allocator's arenas and thread
//! stacks. A server whose RSS passes it queues without bound somewhere.
//!
//! READ_AHEAD (wss only, [`WSS_READ_AHEAD`]): a wss server decrypts and echoes everything one
//! read brought, not one frame, and a reply that cannot be sent stops its reading; so what a
//! client that never reads costs depends on how much one read may bring. Every read fills the
//! room `Session::after_write` leaves, and that is bounded: the buffer keeps at most a partial
//! record L < [`TLS_RECORD`] and at most twice L + READ_CHUNK of capacity (a buffer grown for
//! a long reply is shrunk back), so one read brings at most R = L + 2 × READ_CHUNK. Stuck on
//! its reply, the server then holds the plaintext (a partial frame and R: max_frame + 14 + R),
//! the reply (as long; records add 29 bytes each 16 KiB, within the slack) and L:
//! 2 × (max_frame + 14) + 2R + L, which is the open-connection term plus
//!
//! ```text
//! WSS_READ_AHEAD = 3 × TLS_RECORD + 2 × READ_CHUNK   (about 81 KiB)
//! ```
//!
//! wsport-uring hands the session its spill instead, which pauses at 64 KiB (its `PAUSE_AT`):
//! within the same order; its per-thread spill pool (4 MiB) and provided-buffer ring (1 MiB)
//! are not a connection's and come as slack.
//!
//! Before that bound (the buffer kept whatever it grew to, so each read could take in as much
//! as the last reply was long, and the plaintext and the reply grew together read after read)
//! never-read clients held, per client (VmRSS peak less start, one thread, 1 MiB frames with
//! --max-frame-bytes 1MiB, 3 to 4 clients held in 6 s on a loaded 2-core VM):
//!
//! ```text
//!               before   after
//! tokio         2.6 MiB  1.1 MiB
//! tokio-uring   2.5 MiB  1.1 MiB
//! monoio-uring  2.7 MiB  1.1 MiB
//! monoio-epoll  2.5 MiB  1.1 MiB
//! uring         2.2 MiB  1.1 MiB
//! ```
//!
//! and up to 4.6 MiB on a quieter host, where the server's reads found more queued: the old
//! allowance was 4 MiB.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The spare room a server buffer keeps for the next read (servers/common session.rs).
pub const READ_CHUNK: u64 = 16 * 1024;
/// rustls's per-connection state and record buffers, rounded up.
pub const TLS_STATE: u64 = 64 * 1024;
/// The longest TLS record: 2^14 bytes of plaintext, at most 256 of expansion, and its 5-byte
/// header (RFC 8446 §5.2).
pub const TLS_RECORD: u64 = (16 << 10) + 256 + 5;
/// What a wss server may read ahead for a client that never reads, past the frame-bound
/// terms (derived in the module doc).
pub const WSS_READ_AHEAD: u64 = 3 * TLS_RECORD + 2 * READ_CHUNK;
/// The longest frame header (§5.2): 2 + 8 length + 4 mask.
const FRAME_HEADER: u64 = 14;

/// The server limits and connection counts the bound is computed from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BoundInputs {
    pub max_header_bytes: u64,
    pub max_frame_bytes: u64,
    /// Legitimate connections open beside the abuse.
    pub legit: u64,
    /// The legitimate connections speak wss.
    pub legit_wss: bool,
    /// The abuse's connections in their handshake at once, at most (the slowloris held).
    pub handshaking: u64,
    /// The abuse's connections past their handshake at once, at most, that read (churn).
    pub open: u64,
    /// The abuse's never-read connections, all held at once.
    pub never_read: u64,
    /// The abuse speaks wss.
    pub abuse_wss: bool,
    /// Allowance for the allocator and thread stacks.
    pub slack: u64,
}

impl BoundInputs {
    pub fn per_handshake(&self, wss: bool) -> u64 {
        self.max_header_bytes + 2 * READ_CHUNK + tls_state(wss)
    }

    pub fn per_open(&self, wss: bool) -> u64 {
        2 * (self.max_frame_bytes + FRAME_HEADER) + 2 * READ_CHUNK + tls_state(wss)
    }

    /// A client that never reads: on wss, the server also reads ahead (see the module doc).
    pub fn per_never_read(&self, wss: bool) -> u64 {
        let read_ahead = if wss { WSS_READ_AHEAD } else { 0 };
        self.per_open(wss) + read_ahead
    }

    /// The most RSS a server that started at `base` may reach.
    pub fn bound(&self, base: u64) -> u64 {
        base + self.slack
            + self.legit * self.per_open(self.legit_wss)
            + self.handshaking * self.per_handshake(self.abuse_wss)
            + self.open * self.per_open(self.abuse_wss)
            + self.never_read * self.per_never_read(self.abuse_wss)
    }
}

fn tls_state(wss: bool) -> u64 {
    if wss {
        TLS_STATE
    } else {
        0
    }
}

/// VmRSS of `pid` in bytes, from /proc/PID/status.
pub fn vm_rss(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS line"))
}

/// RSS samples over a run: milliseconds since the start, bytes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RssTrace {
    pub samples: Vec<(u64, u64)>,
}

impl RssTrace {
    pub fn first(&self) -> Option<u64> {
        self.samples.first().map(|s| s.1)
    }

    pub fn max(&self) -> Option<u64> {
        self.samples.iter().map(|s| s.1).max()
    }
}

/// The verdict on a trace.
#[derive(Debug, Clone, Serialize)]
pub struct RssCheck {
    pub base: u64,
    pub max: u64,
    pub bound: u64,
    pub within: bool,
    pub inputs: BoundInputs,
}

/// Check `trace` against the bound from `inputs`, its first sample the base.
pub fn check(trace: &RssTrace, inputs: BoundInputs) -> Option<RssCheck> {
    let base = trace.first()?;
    let max = trace.max()?;
    let bound = inputs.bound(base);
    Some(RssCheck {
        base,
        max,
        bound,
        within: max <= bound,
        inputs,
    })
}

/// Samples a process's RSS on a thread until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<RssTrace>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let started = Instant::now();
            let mut trace = RssTrace::default();
            while !flag.load(Ordering::Relaxed) {
                match vm_rss(pid) {
                    Ok(rss) => trace
                        .samples
                        .push((started.elapsed().as_millis() as u64, rss)),
                    Err(_) => break,
                }
                thread::sleep(every);
            }
            trace
        });
        Sampler { stop, thread }
    }

    pub fn finish(self) -> RssTrace {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> BoundInputs {
        BoundInputs {
            max_header_bytes: 8192,
            max_frame_bytes: 65536,
            legit: 0,
            legit_wss: false,
            handshaking: 100,
            open: 10,
            never_read: 0,
            abuse_wss: false,
            slack: 0,
        }
    }

    #[test]
    fn the_bound_is_limits_times_connections() {
        let i = inputs();
        assert_eq!(i.per_handshake(false), 8192 + 32768);
        assert_eq!(i.per_open(false), 2 * 65550 + 32768);
        assert_eq!(
            i.bound(1000),
            1000 + 100 * (8192 + 32768) + 10 * (2 * 65550 + 32768)
        );
    }

    #[test]
    fn wss_adds_tls_state_and_read_ahead_for_never_read_clients() {
        let ws = BoundInputs {
            never_read: 3,
            ..inputs()
        };
        assert_eq!(ws.per_never_read(false), ws.per_open(false));
        let wss = BoundInputs {
            abuse_wss: true,
            ..ws
        };
        assert_eq!(
            wss.bound(0) - ws.bound(0),
            (100 + 10 + 3) * TLS_STATE + 3 * WSS_READ_AHEAD
        );
        let legit = BoundInputs {
            legit: 5,
            legit_wss: true,
            ..ws
        };
        assert_eq!(
            legit.bound(0) - ws.bound(0),
            5 * (ws.per_open(false) + TLS_STATE)
        );
    }

    #[test]
    fn growth_past_the_bound_fails_the_check() {
        let bound = inputs().bound(1 << 20);
        let trace = RssTrace {
            samples: vec![(0, 1 << 20), (100, bound), (200, bound + 1)],
        };
        let verdict = check(&trace, inputs()).unwrap();
        assert!(!verdict.within);
        let trace = RssTrace {
            samples: vec![(0, 1 << 20), (100, bound)],
        };
        assert!(check(&trace, inputs()).unwrap().within);
    }

    #[test]
    fn this_process_has_an_rss() {
        assert!(vm_rss(std::process::id()).unwrap() > 0);
    }
}

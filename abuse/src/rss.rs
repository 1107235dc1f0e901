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
//! ```
//!
//! with TLS = 64 KiB on wss (0 on ws) and the slack for the allocator's arenas and thread
//! stacks. A server whose RSS passes it queues without bound somewhere.

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
/// The longest frame header (§5.2): 2 + 8 length + 4 mask.
const FRAME_HEADER: u64 = 14;

/// The server limits and connection counts the bound is computed from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BoundInputs {
    pub max_header_bytes: u64,
    pub max_frame_bytes: u64,
    pub tls: bool,
    /// Connections in their handshake at once, at most (the slowloris held).
    pub handshaking: u64,
    /// Connections past their handshake at once, at most (legitimate, never-read, churn).
    pub open: u64,
    /// Allowance for the allocator and thread stacks.
    pub slack: u64,
}

impl BoundInputs {
    fn tls(&self) -> u64 {
        if self.tls {
            TLS_STATE
        } else {
            0
        }
    }

    pub fn per_handshake(&self) -> u64 {
        self.max_header_bytes + 2 * READ_CHUNK + self.tls()
    }

    pub fn per_open(&self) -> u64 {
        2 * (self.max_frame_bytes + FRAME_HEADER) + 2 * READ_CHUNK + self.tls()
    }

    /// The most RSS a server that started at `base` may reach.
    pub fn bound(&self, base: u64) -> u64 {
        base + self.slack + self.handshaking * self.per_handshake() + self.open * self.per_open()
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
            tls: false,
            handshaking: 100,
            open: 10,
            slack: 0,
        }
    }

    #[test]
    fn the_bound_is_limits_times_connections() {
        let i = inputs();
        assert_eq!(i.per_handshake(), 8192 + 32768);
        assert_eq!(i.per_open(), 2 * 65550 + 32768);
        assert_eq!(
            i.bound(1000),
            1000 + 100 * (8192 + 32768) + 10 * (2 * 65550 + 32768)
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

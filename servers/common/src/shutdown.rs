//! SIGINT/SIGTERM as a flag, the same for every runtime.
//!
//! Each runtime has its own signal machinery (tokio's `signal`, none in tokio-uring, its own
//! in monoio); using none of them keeps the servers' shutdown behaviour identical. The signal
//! handler only sets an `AtomicBool`; runtimes poll it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a runtime should check [`Shutdown::is_requested`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A shutdown request: set by SIGINT or SIGTERM (after [`Shutdown::install`]) or by
/// [`Shutdown::request`]; cheap to clone and to check.
///
/// Calling order: `install()` once in `main` before starting the runtimes, clone it into
/// each runtime thread, and there poll [`is_requested`](Self::is_requested) from a cheap
/// periodic timer every [`POLL_INTERVAL`] (~50 ms; one relaxed load per tick). When it turns
/// true: stop accepting, send close frames (1001 going away), wait up to
/// `--shutdown-timeout` for the replies, then return.
///
/// A second SIGINT or SIGTERM while the first is being handled exits the process at once
/// with status 1, so a stuck shutdown can always be cut short.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
}

impl Shutdown {
    /// A flag no signal sets (for tests, or to drive shutdown by other means).
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Registers SIGINT and SIGTERM handlers that set the flag (and exit on the second
    /// signal).
    pub fn install() -> io::Result<Shutdown> {
        let shutdown = Shutdown::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registered first so it runs before the flag is set by the same signal: it exits
            // only when an earlier signal already set the flag.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                1,
                Arc::clone(&shutdown.flag),
            )?;
            signal_hook::flag::register(signal, Arc::clone(&shutdown.flag))?;
        }
        Ok(shutdown)
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Requests shutdown, as a signal would.
    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// The underlying flag, e.g. to stop [`spawn_stats_printer`](crate::spawn_stats_printer).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_seen_by_clones() {
        let a = Shutdown::new();
        let b = a.clone();
        assert!(!b.is_requested());
        a.request();
        assert!(b.is_requested());
    }
}

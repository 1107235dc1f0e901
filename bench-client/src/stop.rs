//! Ending a run early, as Ctrl-C does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag that ends a run early, as Ctrl-C does: the window is cut where it is, connections
/// are closed, and the results so far are reported and written.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag not yet raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raise it.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether it is raised.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Raise it on SIGINT and SIGTERM.
    pub fn on_signals(&self) -> std::io::Result<()> {
        signal_hook::flag::register(signal_hook::consts::SIGINT, self.0.clone())?;
        signal_hook::flag::register(signal_hook::consts::SIGTERM, self.0.clone())?;
        Ok(())
    }
}

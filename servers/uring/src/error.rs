//! The one error type of this server's io_uring layer.

use std::io;

/// Why a runtime thread could not start or keep its ring going.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UringError {
    /// The kernel lacks an io_uring feature that was asked for (each can be turned off by its
    /// flag, to measure without it; nothing is turned off silently).
    #[error(
        "unavailable: {feature} needs Linux ≥ {needs} (this kernel is {kernel}){}",
        .flag.map_or(String::new(), |flag| format!("; pass {flag} to run without it"))
    )]
    Unavailable {
        /// The feature, e.g. `multishot receive`.
        feature: &'static str,
        /// The first kernel version that has it.
        needs: &'static str,
        /// This kernel's release.
        kernel: String,
        /// The flag that turns the feature off, if one does.
        flag: Option<&'static str>,
    },
    /// A system call on the ring failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `registering the provided-buffer ring`.
        what: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
}

impl UringError {
    /// An [`UringError::Io`] for `what`.
    pub fn io(what: &'static str, source: io::Error) -> UringError {
        UringError::Io { what, source }
    }
}

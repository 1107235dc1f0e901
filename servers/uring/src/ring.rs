//! The ring of one runtime thread: built with the best setup flags asked for and available,
//! and the two things the loop does with it: queue an operation, and enter the kernel once to
//! submit everything queued and wait for completions.

use std::io;
use std::time::Duration;

use io_uring::{squeue, types, IoUring};

use crate::error::UringError;

/// Submission queue entries. A loop iteration queues at most one send and one receive per
/// connection with traffic; more than this many are flushed early by [`Ring::push`].
const ENTRIES: u32 = 4096;

/// One thread's io_uring.
pub struct Ring {
    pub uring: IoUring,
    /// Built with SINGLE_ISSUER | DEFER_TASKRUN.
    pub defer_taskrun: bool,
    /// Submit at each iteration's wait (true), or at each push.
    batch: bool,
}

impl Ring {
    /// A ring with SINGLE_ISSUER | DEFER_TASKRUN when `defer_taskrun` is asked and the kernel
    /// (6.1+) takes it, else a plain one with COOP_TASKRUN (5.19) where available.
    ///
    /// DEFER_TASKRUN runs completion work only when this thread enters the kernel to wait, so
    /// a batch of completions is never interrupted by the kernel doing work on our behalf; it
    /// requires SINGLE_ISSUER, which every thread-per-core ring is anyway. Must be called on the
    /// thread that will use the ring: SINGLE_ISSUER binds it to its creator.
    pub fn new(defer_taskrun: bool, batch: bool) -> Result<Ring, UringError> {
        let cq = ENTRIES * 4;
        if defer_taskrun {
            if let Ok(uring) = IoUring::builder()
                .setup_cqsize(cq)
                .setup_single_issuer()
                .setup_defer_taskrun()
                .build(ENTRIES)
            {
                return Ok(Ring {
                    uring,
                    defer_taskrun: true,
                    batch,
                });
            }
        }
        let uring = IoUring::builder()
            .setup_cqsize(cq)
            .setup_coop_taskrun()
            .build(ENTRIES)
            .or_else(|_| IoUring::builder().setup_cqsize(cq).build(ENTRIES))
            .map_err(|e| UringError::io("creating an io_uring", e))?;
        Ok(Ring {
            uring,
            defer_taskrun: false,
            batch,
        })
    }

    /// Queue `entry`; when the submission queue is full, submit what is queued first.
    ///
    /// # Safety
    ///
    /// Every buffer and address `entry` points at must stay valid, and must not be moved or
    /// written by us (read, for a receive), until its completion is reaped.
    pub unsafe fn push(&mut self, entry: &squeue::Entry) -> Result<(), UringError> {
        // SAFETY: the caller's promise above.
        while unsafe { self.uring.submission().push(entry) }.is_err() {
            self.submit()?;
        }
        if !self.batch {
            self.submit()?;
        }
        Ok(())
    }

    fn submit(&mut self) -> Result<(), UringError> {
        match self.uring.submit() {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(UringError::io("io_uring_enter", e)),
        }
    }

    /// Submit everything queued and wait for at least one completion, or `timeout`: one
    /// `io_uring_enter` for the whole iteration.
    pub fn submit_and_wait(&mut self, timeout: Duration) -> Result<(), UringError> {
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.uring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(UringError::io("io_uring_enter", e)),
        }
    }
}

/// Not failures: the wait timed out (ETIME), a signal arrived (EINTR), or the completion
/// queue is full and must be reaped first (EBUSY).
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}

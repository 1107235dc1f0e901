//! `--broadcast` in a loop with no tasks: how a publish reaches this thread's connections.
//!
//! The hub ([`wsport_server_common::hub`]) wakes a subscriber through the [`Waker`] left in its
//! inbox. Here each connection's waker records the connection's key in this thread's ready
//! list; the loop delivers to the listed connections after each batch of completions. A
//! publish from another thread must also end this thread's wait in `io_uring_enter`: the
//! waker then writes to an eventfd the ring keeps a read on. It writes only while the thread
//! sleeps (`awake` is false), so the publishes of this thread's own connections, made while it
//! is awake, cost no system call.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};
use std::{io, mem};

use wsport_server_common::hub::{Frames, Hub, Subscription};

/// This thread's side of the hub.
pub struct Fanout {
    hub: Arc<Hub>,
    ready: Arc<Ready>,
    /// The eventfd read's buffer: boxed, so it stays put while the read is in flight.
    pub counter: Box<u64>,
    /// A read on the eventfd is in flight.
    pub armed: bool,
    /// Where a connection's inbox is taken to (kept to reuse its allocation).
    pub inbox: Vec<Frames>,
}

struct Ready {
    keys: Mutex<Vec<u32>>,
    /// The thread is handling completions, and will look at `keys` before it sleeps.
    awake: AtomicBool,
    eventfd: OwnedFd,
}

/// One connection's waker: its key into the ready list.
struct ConnWaker {
    ready: Arc<Ready>,
    key: u32,
}

impl Fanout {
    pub fn new(hub: Arc<Hub>) -> io::Result<Fanout> {
        // SAFETY: eventfd(2) takes no pointer; a descriptor it returns is ours alone.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor nothing else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Fanout {
            hub,
            ready: Arc::new(Ready {
                keys: Mutex::new(Vec::new()),
                awake: AtomicBool::new(true),
                eventfd,
            }),
            counter: Box::new(0),
            armed: false,
            inbox: Vec::new(),
        })
    }

    /// A subscription for the connection under `key`, and the waker to poll it with.
    pub fn subscribe(&self, key: u32) -> (Subscription, Waker) {
        let waker = Waker::from(Arc::new(ConnWaker {
            ready: Arc::clone(&self.ready),
            key,
        }));
        (self.hub.subscribe(), waker)
    }

    pub fn eventfd(&self) -> i32 {
        self.ready.eventfd.as_raw_fd()
    }

    /// The connections woken since the last call.
    pub fn take_ready(&self, into: &mut Vec<u32>) {
        let mut keys = self
            .ready
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        mem::swap(&mut *keys, into);
    }

    /// About to wait: from now on a wake writes the eventfd. False (and still awake) when a
    /// connection was woken meanwhile, so the loop must not sleep.
    pub fn may_sleep(&self) -> bool {
        self.ready.awake.store(false, Ordering::SeqCst);
        let pending = !self
            .ready
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if pending {
            self.ready.awake.store(true, Ordering::SeqCst);
        }
        !pending
    }

    /// Back from the wait: wakes only list their key again.
    pub fn woke(&self) {
        self.ready.awake.store(true, Ordering::SeqCst);
    }
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let ready = &self.ready;
        ready
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.key);
        if !ready.awake.swap(true, Ordering::SeqCst) {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live 8-byte array to our own eventfd. It cannot
            // fail short of the counter overflowing, and then the thread is awake anyway.
            let _ = unsafe { libc::write(ready.eventfd.as_raw_fd(), one.as_ptr().cast(), 8) };
        }
    }
}

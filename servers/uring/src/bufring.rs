//! The provided-buffer ring of one thread (IORING_REGISTER_PBUF_RING, Linux 5.19): one pool
//! of receive buffers shared by every connection of the thread, so that a connection holds a
//! buffer only between the completion that filled it and the moment its bytes are consumed —
//! an idle connection holds none.
//!
//! Each buffer is a `Vec<u8>` of its own, so that the session (which works on a `Vec` it may
//! grow, e.g. to encrypt a wss reply) can take it as it is; [`BufRing::take`] lends it out,
//! [`BufRing::give_back`] returns it (or a fresh one, if the session grew it) to the kernel.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::Submitter;

use crate::error::UringError;

/// The buffer group id; one group per ring, so any id does.
pub const BUF_GROUP: u16 = 0;

/// A grown buffer is kept while it is at most this many times the ring's size.
const KEEP_GROWN: usize = 4;

pub struct BufRing {
    /// `entries` slots, page-aligned, shared with the kernel.
    slots: NonNull<BufRingEntry>,
    slots_layout: Layout,
    /// Indexed by buffer id; empty (no allocation) while lent out.
    bufs: Vec<Vec<u8>>,
    size: usize,
    entries: u16,
    /// Our copy of the tail: slots filled so far.
    tail: u16,
    /// Slots filled since the last [`BufRing::publish`].
    unpublished: bool,
}

impl BufRing {
    /// `entries` (a power of two) buffers of `size` bytes, all in the ring, not yet registered.
    pub fn new(entries: u16, size: usize) -> BufRing {
        assert!(entries.is_power_of_two());
        let slots_layout = Layout::from_size_align(
            usize::from(entries) * std::mem::size_of::<BufRingEntry>(),
            4096,
        )
        .expect("a page-aligned layout of at most 512 KiB");
        // SAFETY: the layout has a non-zero size (entries >= 1).
        let slots = unsafe { alloc_zeroed(slots_layout) };
        let Some(slots) = NonNull::new(slots.cast::<BufRingEntry>()) else {
            std::alloc::handle_alloc_error(slots_layout);
        };
        let mut ring = BufRing {
            slots,
            slots_layout,
            bufs: (0..entries).map(|_| Vec::with_capacity(size)).collect(),
            size,
            entries,
            tail: 0,
            unpublished: false,
        };
        for bid in 0..entries {
            ring.push(bid);
        }
        ring.publish();
        ring
    }

    /// Register the ring with `submitter`'s io_uring under [`BUF_GROUP`].
    ///
    /// The ring must outlive the io_uring's use of it: the worker drops the io_uring first.
    pub fn register(&self, submitter: &Submitter<'_>) -> Result<(), UringError> {
        // SAFETY: the slots stay allocated, page-aligned and `entries` long for as long as
        // this BufRing lives, which the worker keeps longer than the io_uring (or leaks).
        unsafe {
            submitter.register_buf_ring_with_flags(
                self.slots.as_ptr() as u64,
                self.entries,
                BUF_GROUP,
                0,
            )
        }
        .map_err(|e| UringError::io("registering the provided-buffer ring", e))
    }

    /// Buffer `bid`, which a completion just filled with `len` bytes, lent out to the caller.
    pub fn take(&mut self, bid: u16, len: usize) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.bufs[usize::from(bid)]);
        assert!(len <= buf.capacity(), "a completion longer than its buffer");
        // SAFETY: the kernel wrote `len` bytes at the start of this buffer (its address is the
        // one `push` published for `bid`) before posting the completion that names it, and it
        // does not touch the buffer again until `give_back` publishes it anew; `len` is within
        // the capacity (checked above).
        unsafe { buf.set_len(len) };
        buf
    }

    /// Return buffer `bid` (as lent by [`BufRing::take`], possibly grown) to the kernel,
    /// visible after the next [`BufRing::publish`].
    pub fn give_back(&mut self, bid: u16, mut buf: Vec<u8>) {
        if buf.capacity() < self.size || buf.capacity() > KEEP_GROWN * self.size {
            buf = Vec::with_capacity(self.size);
        }
        buf.clear();
        self.bufs[usize::from(bid)] = buf;
        self.push(bid);
    }

    /// Make the buffers given back since the last call visible to the kernel: one store per
    /// loop iteration, not one per buffer.
    pub fn publish(&mut self) {
        if !self.unpublished {
            return;
        }
        self.unpublished = false;
        // SAFETY: `slots` is the page-aligned base of the ring; the kernel reads the tail from
        // the first entry's reserved field, a naturally aligned u16 that only we write.
        let tail = unsafe { &*BufRingEntry::tail(self.slots.as_ptr()).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// Put buffer `bid` in the next slot.
    fn push(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.entries - 1));
        let buf = &mut self.bufs[usize::from(bid)];
        // SAFETY: `index < entries`, so the slot lies inside the allocation; the kernel reads
        // only the slots between its head and the published tail, and this one is past it.
        let slot = unsafe { &mut *self.slots.as_ptr().add(index) };
        slot.set_addr(buf.as_mut_ptr() as u64);
        slot.set_len(buf.capacity().min(u32::MAX as usize) as u32);
        slot.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.unpublished = true;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the io_uring that used it is gone.
        unsafe { dealloc(self.slots.as_ptr().cast(), self.slots_layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_buffer_comes_back_to_the_next_slot() {
        let mut ring = BufRing::new(4, 512);
        assert_eq!(ring.tail, 4);
        // Length 0: no completion filled it in this test.
        let buf = ring.take(2, 0);
        assert!(buf.capacity() >= 512);
        assert!(ring.bufs[2].capacity() == 0);
        ring.give_back(2, buf);
        assert_eq!(ring.tail, 5);
        assert!(ring.unpublished);
        ring.publish();
        assert!(!ring.unpublished);
    }

    #[test]
    fn a_buffer_grown_far_past_its_size_is_replaced() {
        let mut ring = BufRing::new(2, 512);
        let mut buf = ring.take(0, 0);
        buf.reserve(1 << 20);
        ring.give_back(0, buf);
        assert_eq!(ring.bufs[0].capacity(), 512);
    }
}

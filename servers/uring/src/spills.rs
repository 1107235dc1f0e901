//! Spill buffers kept for reuse on this thread.
//!
//! A connection's spill is freed as soon as it is empty, so an idle connection holds no read
//! buffer (see `conn`). With large messages that costs an allocation, its page faults and a
//! free per message: a 16 KiB message spans several provided buffers and passes through the
//! spill every time (~15% of the server's CPU at 16 KiB in
//! results/2026-12-06-vm/wss-16k/). Freed spills therefore go to a small per-thread pool
//! instead, and a connection whose spill is empty takes one from it. The pool is bounded in
//! count and in each buffer's capacity, so it adds at most `KEEP × MAX_CAPACITY` (4 MiB) to
//! a thread, whatever the number of connections.

use std::cell::RefCell;

/// Buffers the pool keeps.
const KEEP: usize = 64;
/// Larger buffers are freed rather than kept.
const MAX_CAPACITY: usize = 64 * 1024;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer, with the capacity a previous spill left if the pool has one.
pub fn take() -> Vec<u8> {
    POOL.with(|pool| pool.borrow_mut().pop())
        .unwrap_or_default()
}

/// Give back an emptied spill (its bytes are cleared).
pub fn give(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_CAPACITY {
        return;
    }
    buf.clear();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < KEEP {
            pool.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_empty_with_its_capacity() {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(b"leftover");
        give(buf);
        let again = take();
        assert!(again.is_empty());
        assert!(again.capacity() >= 4096);
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_capacity() {
        give(Vec::with_capacity(MAX_CAPACITY + 1));
        for _ in 0..KEEP + 10 {
            give(Vec::with_capacity(16));
        }
        let kept = POOL.with(|pool| pool.borrow().len());
        assert_eq!(kept, KEEP);
        assert!(POOL.with(|pool| pool.borrow().iter().all(|b| b.capacity() <= MAX_CAPACITY)));
    }
}

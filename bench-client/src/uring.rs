//! The io_uring engine: one ring per worker, every send and receive of a batch handed to the
//! kernel in one `io_uring_enter`.
//!
//! Why io_uring: a closed-loop client spends, per message, one send and one receive. With
//! readiness IO (epoll) each is a system call of its own, plus a share of `epoll_wait`. Here
//! the worker queues a send SQE for every connection with something to say, then makes *one*
//! `io_uring_enter` that submits them all and waits for the next completions: at 100
//! connections that is tens of messages per system call. With `DEFER_TASKRUN` the kernel runs
//! the completion work inside that same call instead of interrupting the thread.
//!
//! On kernels with `DEFER_TASKRUN` (6.1) the engine also uses:
//! - **multishot receives** into a ring of provided buffers: one receive per connection stays
//!   armed for the connection's life, so a message costs no receive submission and no poll
//!   arming; each completion names the buffer the bytes are in, which is decoded (for plain ws,
//!   copied once into the connection's `rx`) and handed straight back to the ring;
//! - **registered files**: SQEs name sockets by their slot in a fixed file table, which saves
//!   a file lookup and two atomic reference counts per operation.
//!
//! Older kernels get single-shot receives into each connection's own buffer and plain
//! descriptors. Either way, buffers are never moved or touched while the kernel holds them:
//! a single-shot `recv_buf` is decoded only after its receive completed, a provided buffer only
//! between its completion and its return to the ring, and sends go from `Conn::pending`, which
//! no new frame touches until `on_sent` (see `conn`). Sockets are blocking: io_uring makes its
//! own non-blocking attempt and then waits on readiness internally.
//!
//! Shutdown: a finished connection with operations in flight is `shutdown(2)`, which
//! completes them; its socket is closed when the last completes. A worker never frees memory
//! the kernel may still write: if operations do not complete within a grace period (they
//! always should), the connections and buffers are leaked rather than freed.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::error::BenchError;
use crate::worker::{Next, Worker};

const OP_CONNECT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;

/// The buffer group of the provided-buffer ring (one per ring, so any id does).
const BUF_GROUP: u16 = 0;

/// Size of each provided buffer: a page, several small echoes or part of a TLS record.
const PROVIDED_BUF: usize = 4096;

/// How long to wait for operations to complete after shutting their sockets down.
const EXIT_GRACE_NS: u64 = 3_000_000_000;

/// Is io_uring usable here? `Err` carries advice (seccomp, sysctl, memlock).
pub fn probe() -> Result<(), String> {
    wsport_server_common::uring::probe().map_err(|e| e.to_string())
}

/// The ring with the best features this kernel has.
struct Ring {
    ring: IoUring,
    name: &'static str,
    /// DEFER_TASKRUN, hence Linux 6.1+: multishot receives, provided-buffer rings and sparse
    /// registered files are all available too.
    modern: bool,
}

fn build_ring(entries: u32) -> Result<Ring, BenchError> {
    // DEFER_TASKRUN (6.1): completion work runs only when we enter the kernel to wait, so a
    // batch is never interrupted. COOP_TASKRUN (5.19): no IPI to interrupt us either.
    // TASKRUN_FLAG (5.19): the kernel flags pending completion work in the submission ring, so
    // an enter that must not wait (a deadline inside the wake-up margin) still runs it.
    // WSPORT_BENCH_URING=basic skips the 6.1 features, to measure what they are worth.
    let cq = entries * 2;
    let basic = std::env::var_os("WSPORT_BENCH_URING").is_some_and(|v| v == "basic");
    if !basic {
        if let Ok(ring) = IoUring::builder()
            .setup_cqsize(cq)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .build(entries)
        {
            return Ok(Ring {
                ring,
                name: "io_uring (batched, defer_taskrun)",
                modern: true,
            });
        }
    }
    if let Ok(ring) = IoUring::builder()
        .setup_cqsize(cq)
        .setup_coop_taskrun()
        .build(entries)
    {
        return Ok(Ring {
            ring,
            name: "io_uring (batched, coop_taskrun)",
            modern: false,
        });
    }
    let ring = IoUring::builder()
        .setup_cqsize(cq)
        .build(entries)
        .map_err(|e| BenchError::io("creating an io_uring", e))?;
    Ok(Ring {
        ring,
        name: "io_uring (batched)",
        modern: false,
    })
}

/// Per connection: its socket and which operations the kernel holds.
#[derive(Default)]
struct Io {
    fd: Option<OwnedFd>,
    connect: bool,
    recv: bool,
    send: bool,
    /// Finished: no new operations; close once none is in flight.
    finishing: bool,
    shut: bool,
}

impl Io {
    fn busy(&self) -> bool {
        self.connect || self.recv || self.send
    }
}

/// A ring of provided buffers (IORING_REGISTER_PBUF_RING): the kernel takes a buffer for each
/// multishot receive completion; we hand it back once its bytes are decoded.
struct BufRing {
    /// `entries` ring slots, page-aligned, shared with the kernel.
    slots: NonNull<BufRingEntry>,
    slots_layout: Layout,
    /// `entries * size` bytes of buffers.
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    entries: u16,
    size: usize,
    /// Our copy of the tail: slots published so far.
    tail: u16,
}

impl BufRing {
    fn new(entries: u16, size: usize) -> Self {
        let slots_layout = Layout::from_size_align(
            usize::from(entries) * std::mem::size_of::<BufRingEntry>(),
            4096,
        )
        .expect("layout");
        let bufs_layout = Layout::from_size_align(usize::from(entries) * size, 64).expect("layout");
        // SAFETY: both layouts have a non-zero size (entries >= 1, size >= 1).
        let (slots, bufs) = unsafe { (alloc_zeroed(slots_layout), alloc_zeroed(bufs_layout)) };
        let (Some(slots), Some(bufs)) = (
            NonNull::new(slots.cast::<BufRingEntry>()),
            NonNull::new(bufs),
        ) else {
            std::alloc::handle_alloc_error(slots_layout);
        };
        let mut ring = Self {
            slots,
            slots_layout,
            bufs,
            bufs_layout,
            entries,
            size,
            tail: 0,
        };
        for bid in 0..entries {
            ring.push(bid);
        }
        ring.publish();
        ring
    }

    /// Put buffer `bid` in the next free slot (visible to the kernel after `publish`).
    fn push(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.entries - 1));
        // SAFETY: `index < entries`, so the slot is inside the allocation; the kernel only
        // reads slots between its head and our published tail, and this one is past the tail.
        let slot = unsafe { &mut *self.slots.as_ptr().add(index) };
        // SAFETY: `bid < entries`, so the buffer lies inside `bufs`.
        let addr = unsafe { self.bufs.as_ptr().add(usize::from(bid) * self.size) };
        slot.set_addr(addr as u64);
        slot.set_len(self.size as u32);
        slot.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Make the pushed buffers visible to the kernel.
    fn publish(&self) {
        // SAFETY: `slots` is the page-aligned base of the ring, whose first entry's reserved
        // field is the tail the kernel reads; it is a naturally aligned u16, written only here.
        let tail = unsafe { &*BufRingEntry::tail(self.slots.as_ptr()).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// The first `len` bytes of buffer `bid`, which a completion just handed to us.
    fn get(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.entries && len <= self.size);
        // SAFETY: in bounds (checked above); the kernel wrote these bytes before posting the
        // completion and will not touch the buffer again until we push it back.
        unsafe {
            std::slice::from_raw_parts(self.bufs.as_ptr().add(usize::from(bid) * self.size), len)
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts. The engine drops the ring (which
        // unregisters the buffers) before this, or leaks both.
        unsafe {
            dealloc(self.slots.as_ptr().cast(), self.slots_layout);
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}

struct Engine {
    // Field order is drop order: the ring (and its registrations) goes before the buffers.
    ring: IoUring,
    bufs: Option<BufRing>,
    /// Plain ws connections use multishot receives too (small echoes).
    multishot_plain: bool,
    fixed_files: bool,
    io: Vec<Io>,
    addrs: Vec<socket2::SockAddr>,
    in_flight: usize,
    /// Slots whose socket was closed since the worker last heard of it.
    closed: Vec<usize>,
}

impl Engine {
    /// Queue one SQE; when the submission queue is full, hand it to the kernel first.
    fn push(&mut self, entry: squeue::Entry) -> Result<(), BenchError> {
        loop {
            // SAFETY: every entry pushed points at memory that stays valid and untouched until
            // its completion is reaped: a connection's receive and send buffers, the provided
            // buffers (see the module doc; `run` never frees them with operations in flight),
            // and `addrs`, which is not resized after the connects are queued.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.in_flight += 1;
                return Ok(());
            }
            self.ring
                .submit()
                .map_err(|e| BenchError::io("io_uring_enter", e))?;
        }
    }

    /// How SQEs name `slot`'s socket: its index in the registered file table, or its
    /// descriptor.
    fn target(&self, slot: usize) -> (types::Fd, squeue::Flags) {
        if self.fixed_files {
            (types::Fd(slot as i32), squeue::Flags::FIXED_FILE)
        } else {
            (
                types::Fd(self.io[slot].fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())),
                squeue::Flags::empty(),
            )
        }
    }

    fn arm_recv(&mut self, w: &mut Worker, slot: usize) -> Result<(), BenchError> {
        let io = &self.io[slot];
        if io.recv || io.finishing || io.fd.is_none() {
            return Ok(());
        }
        let (fd, flags) = self.target(slot);
        let entry = if self.bufs.is_some() && (self.multishot_plain || w.conns[slot].is_tls()) {
            opcode::RecvMulti::new(fd, BUF_GROUP).build()
        } else {
            let buf = w.conns[slot].recv_buf();
            opcode::Recv::new(fd, buf.as_mut_ptr(), buf.len() as u32).build()
        };
        self.io[slot].recv = true;
        self.push(entry.flags(flags).user_data(user_data(slot, OP_RECV)))
    }

    /// Close `slot` now if nothing is in flight, else make what is in flight complete.
    fn wind_down(&mut self, slot: usize) {
        let io = &mut self.io[slot];
        io.finishing = true;
        if !io.busy() {
            self.close(slot);
        } else if !io.shut {
            io.shut = true;
            if let Some(fd) = &io.fd {
                let _ = socket2::SockRef::from(fd).shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if self.io[slot].fd.take().is_some() {
            if self.fixed_files {
                // The table holds its own reference to the socket: drop it too.
                let _ = self
                    .ring
                    .submitter()
                    .register_files_update(slot as u32, &[-1]);
            }
            self.closed.push(slot);
        }
    }

    /// A new socket for `slot`, and its connect.
    fn connect(&mut self, w: &mut Worker, slot: usize) -> Result<(), BenchError> {
        self.io[slot] = Io::default();
        let source = w.conns[slot].source;
        let socket = match crate::sys::tcp_socket(&self.addrs[slot], source, false) {
            Ok(s) => s,
            Err(err) => {
                w.failed(slot, err.raw_os_error().unwrap_or(libc::EIO), "socket");
                return Ok(());
            }
        };
        if self.fixed_files {
            self.ring
                .submitter()
                .register_files_update(slot as u32, &[socket.as_raw_fd()])
                .map_err(|err| BenchError::io("registering a socket with io_uring", err))?;
        }
        self.io[slot].fd = Some(socket.into());
        let (fd, flags) = self.target(slot);
        let addr = &self.addrs[slot];
        let entry = opcode::Connect::new(fd, addr.as_ptr().cast(), addr.len())
            .build()
            .flags(flags)
            .user_data(user_data(slot, OP_CONNECT));
        self.io[slot].connect = true;
        self.push(entry)
    }
}

fn user_data(slot: usize, op: u64) -> u64 {
    (slot as u64) << 8 | op
}

/// Drive `w` to the end on io_uring.
pub fn run(w: &mut Worker) -> Result<(), BenchError> {
    let n = w.conns.len();
    // One receive and one send per connection at most, plus the connects: room for a whole
    // batch in one submission; the push loop copes with more.
    let entries = ((2 * n + 16).next_power_of_two()).clamp(64, 8192) as u32;
    let Ring { ring, modern, name } = build_ring(entries)?;
    let mut e = Engine {
        ring,
        bufs: None,
        multishot_plain: false,
        fixed_files: false,
        io: (0..n).map(|_| Io::default()).collect(),
        addrs: w
            .conns
            .iter()
            .map(|c| w.ctx.targets[c.target].addr.into())
            .collect(),
        in_flight: 0,
        closed: Vec::new(),
    };
    if modern {
        e.fixed_files = e.ring.submitter().register_files_sparse(n as u32).is_ok();
        // Plain ws echoes larger than a provided buffer are received straight into the
        // connection's buffer instead: copying them out of provided buffers would cost more
        // than the multishot saves. wss always uses them (rustls copies the ciphertext anyway).
        let max_frame = w.ctx.load.sizes.iter().copied().max().unwrap_or(0) + 10;
        e.multishot_plain = max_frame <= PROVIDED_BUF;
        // Enough buffers for every connection to have a few completions waiting.
        let count = ((4 * n).next_power_of_two()).clamp(64, 4096) as u16;
        let ring = BufRing::new(count, PROVIDED_BUF);
        // SAFETY: the slots stay allocated, page-aligned and `count` long until the engine
        // drops the io_uring (before the BufRing) or leaks both.
        let registered = unsafe {
            e.ring.submitter().register_buf_ring_with_flags(
                ring.slots.as_ptr() as u64,
                count,
                BUF_GROUP,
                0,
            )
        };
        if registered.is_ok() {
            e.bufs = Some(ring);
        }
    }
    w.engine = if modern {
        let mut features = vec!["batched", "defer_taskrun"];
        match (e.bufs.is_some(), e.multishot_plain) {
            (true, true) => features.push("multishot recv"),
            (true, false) => features.push("multishot recv for wss"),
            (false, _) => {}
        }
        if e.fixed_files {
            features.push("fixed files");
        }
        format!("io_uring ({})", features.join(", "))
    } else {
        name.to_owned()
    };
    // (Nothing is in flight yet: each wait lasts its whole timeout.)
    w.calibrate_wake(|d| {
        let ts = types::Timespec::from(d);
        let _ = e
            .ring
            .submitter()
            .submit_with_args(1, &types::SubmitArgs::new().timespec(&ts));
    });
    let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(2 * entries as usize);
    let mut stamps: Vec<usize> = Vec::with_capacity(n);
    let mut exit_since: Option<u64> = None;
    loop {
        let next = w.poll();
        for slot in std::mem::take(&mut w.ctx.queues.finished) {
            e.wind_down(slot);
        }
        for slot in std::mem::take(&mut e.closed) {
            w.closed(slot);
        }
        for slot in std::mem::take(&mut w.ctx.queues.reconnect) {
            e.connect(w, slot)?;
        }
        if next == Next::Exit {
            if e.in_flight == 0 {
                break;
            }
            let now = w.clock();
            let since = *exit_since.get_or_insert(now);
            if now - since > EXIT_GRACE_NS {
                // Never free what the kernel may still write into.
                std::mem::forget(std::mem::take(&mut w.conns));
                std::mem::forget(e);
                return Ok(());
            }
        }

        // Sends for every connection with bytes queued and no send in flight.
        let mut dirty = std::mem::take(&mut w.ctx.queues.dirty);
        for &slot in &dirty {
            w.conns[slot].clear_dirty();
            let io = &e.io[slot];
            if io.send || io.finishing || io.fd.is_none() {
                continue;
            }
            let (fd, flags) = e.target(slot);
            let pending = w.conns[slot].pending();
            if pending.is_empty() {
                continue;
            }
            let entry = opcode::Send::new(fd, pending.as_ptr(), pending.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .flags(flags)
                .user_data(user_data(slot, OP_SEND));
            e.io[slot].send = true;
            e.push(entry)?;
            stamps.push(slot);
        }
        dirty.clear();
        w.ctx.queues.dirty = dirty;

        // One clock read stamps the whole batch, just before it goes to the kernel.
        if !stamps.is_empty() {
            let now = w.clock();
            for slot in stamps.drain(..) {
                w.conns[slot].stamp(now, &mut w.ctx);
            }
        }

        let timeout = w.timeout(next);
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        // No time left: submit and reap without waiting (a zero timeout would still go through
        // the kernel's timed wait).
        let want = usize::from(!timeout.is_zero());
        match e.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(err) => return Err(BenchError::io("io_uring_enter", err)),
        }
        w.set_now(w.clock());

        cqes.clear();
        cqes.extend(
            e.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        let mut recycled = false;
        for &(ud, res, flags) in &cqes {
            let slot = (ud >> 8) as usize;
            let op = ud & 0xff;
            // A multishot receive stays in flight until a completion without MORE.
            let ended = !cqueue::more(flags);
            if ended {
                e.in_flight -= 1;
            }
            match op {
                OP_CONNECT => e.io[slot].connect = false,
                OP_RECV => e.io[slot].recv &= !ended,
                _ => e.io[slot].send = false,
            }
            // Bytes in a provided buffer: decode them (unless the connection is finished),
            // then hand the buffer back.
            if e.io[slot].finishing {
                if let (Some(bid), Some(bufs)) = (cqueue::buffer_select(flags), e.bufs.as_mut()) {
                    bufs.push(bid);
                    recycled = true;
                }
                if !e.io[slot].busy() {
                    e.close(slot);
                }
                continue;
            }
            let provided = cqueue::buffer_select(flags).zip(e.bufs.as_ref());
            match op {
                OP_CONNECT if res == 0 => {
                    w.connected(slot, Ok(()));
                    if w.conns[slot].wants_recv() {
                        e.arm_recv(w, slot)?;
                    }
                }
                OP_CONNECT => w.connected(slot, Err(-res)),
                OP_RECV => {
                    if res > 0 {
                        match provided {
                            Some((bid, bufs)) => {
                                w.received_bytes(slot, bufs.get(bid, res as usize));
                                e.bufs.as_mut().expect("provided").push(bid);
                                recycled = true;
                            }
                            None => w.received(slot, res as usize),
                        }
                    } else if res == 0 {
                        w.eof(slot);
                    } else if !matches!(
                        -res,
                        libc::EINTR | libc::EAGAIN | libc::ECANCELED | libc::ENOBUFS
                    ) {
                        // ENOBUFS: the provided buffers ran out; re-armed below once returned.
                        w.failed(slot, -res, "recv");
                    }
                    if ended && w.conns[slot].wants_recv() {
                        e.arm_recv(w, slot)?;
                    }
                }
                _ => {
                    if res >= 0 {
                        let conn = &mut w.conns[slot];
                        conn.on_sent(res as usize);
                        if conn.has_pending() {
                            conn.mark(&mut w.ctx);
                        }
                    } else if !matches!(-res, libc::EINTR | libc::EAGAIN) {
                        w.failed(slot, -res, "send");
                    } else {
                        w.conns[slot].mark(&mut w.ctx);
                    }
                }
            }
        }
        if recycled {
            e.bufs.as_ref().expect("recycled into it").publish();
        }
    }
    Ok(())
}

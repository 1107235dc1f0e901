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
    let mut e = Engine::new(ring, w);
    if modern {
        e.use_modern_features(w);
    }
    w.engine = if modern {
        e.describe()
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
    let mut batch = Batch::with_capacity(2 * entries as usize, n);
    let mut exit_since: Option<u64> = None;
    loop {
        let next = w.poll();
        e.follow_worker(w)?;
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
        e.queue_sends(w, &mut batch.stamps)?;
        e.enter(w, next)?;
        e.reap(w, &mut batch.cqes)?;
    }
    Ok(())
}

/// Scratch space of the loop, allocated once.
struct Batch {
    /// (user_data, result, flags) of the completions reaped by one enter.
    cqes: Vec<(u64, i32, u32)>,
    /// Connections whose send goes out in this batch, to stamp with one clock read.
    stamps: Vec<usize>,
}

impl Batch {
    fn with_capacity(cqes: usize, conns: usize) -> Self {
        Batch {
            cqes: Vec::with_capacity(cqes),
            stamps: Vec::with_capacity(conns),
        }
    }
}

impl Engine {
    fn new(ring: IoUring, w: &Worker) -> Self {
        Engine {
            ring,
            bufs: None,
            multishot_plain: false,
            fixed_files: false,
            io: (0..w.conns.len()).map(|_| Io::default()).collect(),
            addrs: w
                .conns
                .iter()
                .map(|c| w.ctx.targets[c.target].addr.into())
                .collect(),
            in_flight: 0,
            closed: Vec::new(),
        }
    }

    /// Registered files and multishot receives into a provided-buffer ring (Linux 6.1+),
    /// each where the kernel accepts its registration.
    fn use_modern_features(&mut self, w: &Worker) {
        let n = w.conns.len();
        self.fixed_files = self
            .ring
            .submitter()
            .register_files_sparse(n as u32)
            .is_ok();
        // Plain ws echoes larger than a provided buffer are received straight into the
        // connection's buffer instead: copying them out of provided buffers would cost more
        // than the multishot saves. wss always uses them (rustls copies the ciphertext anyway).
        let max_frame = w.ctx.load.sizes.iter().copied().max().unwrap_or(0) + 10;
        self.multishot_plain = max_frame <= PROVIDED_BUF;
        // Enough buffers for every connection to have a few completions waiting.
        let count = ((4 * n).next_power_of_two()).clamp(64, 4096) as u16;
        let ring = BufRing::new(count, PROVIDED_BUF);
        // SAFETY: the slots stay allocated, page-aligned and `count` long until the engine
        // drops the io_uring (before the BufRing) or leaks both.
        let registered = unsafe {
            self.ring.submitter().register_buf_ring_with_flags(
                ring.slots.as_ptr() as u64,
                count,
                BUF_GROUP,
                0,
            )
        };
        if registered.is_ok() {
            self.bufs = Some(ring);
        }
    }

    /// The engine's name with the features in use, for the report.
    fn describe(&self) -> String {
        let mut features = vec!["batched", "defer_taskrun"];
        match (self.bufs.is_some(), self.multishot_plain) {
            (true, true) => features.push("multishot recv"),
            (true, false) => features.push("multishot recv for wss"),
            (false, _) => {}
        }
        if self.fixed_files {
            features.push("fixed files");
        }
        format!("io_uring ({})", features.join(", "))
    }

    /// Act on what the worker decided: wind down finished connections, report closed ones,
    /// reconnect.
    fn follow_worker(&mut self, w: &mut Worker) -> Result<(), BenchError> {
        for slot in std::mem::take(&mut w.ctx.queues.finished) {
            self.wind_down(slot);
        }
        for slot in std::mem::take(&mut self.closed) {
            w.closed(slot);
        }
        for slot in std::mem::take(&mut w.ctx.queues.reconnect) {
            self.connect(w, slot)?;
        }
        Ok(())
    }

    /// A send for every connection with bytes queued and no send in flight, then one clock
    /// read stamps the whole batch, just before it goes to the kernel.
    fn queue_sends(&mut self, w: &mut Worker, stamps: &mut Vec<usize>) -> Result<(), BenchError> {
        let mut dirty = std::mem::take(&mut w.ctx.queues.dirty);
        for &slot in &dirty {
            w.conns[slot].clear_dirty();
            if self.queue_send(w, slot)? {
                stamps.push(slot);
            }
        }
        dirty.clear();
        w.ctx.queues.dirty = dirty;
        if !stamps.is_empty() {
            let now = w.clock();
            for slot in stamps.drain(..) {
                w.conns[slot].stamp(now, &mut w.ctx);
            }
        }
        Ok(())
    }

    /// Queue `slot`'s pending bytes, unless a send is in flight or there is nothing to send.
    fn queue_send(&mut self, w: &mut Worker, slot: usize) -> Result<bool, BenchError> {
        let io = &self.io[slot];
        if io.send || io.finishing || io.fd.is_none() {
            return Ok(false);
        }
        let pending = w.conns[slot].pending();
        if pending.is_empty() {
            return Ok(false);
        }
        let (fd, flags) = self.target(slot);
        let entry = opcode::Send::new(fd, pending.as_ptr(), pending.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .flags(flags)
            .user_data(user_data(slot, OP_SEND));
        self.io[slot].send = true;
        self.push(entry)?;
        Ok(true)
    }

    /// One `io_uring_enter`: submit everything queued and wait for a completion until the
    /// worker's next deadline.
    fn enter(&mut self, w: &mut Worker, next: Next) -> Result<(), BenchError> {
        let timeout = w.timeout(next);
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        // No time left: submit and reap without waiting (a zero timeout would still go through
        // the kernel's timed wait).
        let want = usize::from(!timeout.is_zero());
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(err) => return Err(BenchError::io("io_uring_enter", err)),
        }
        w.set_now(w.clock());
        Ok(())
    }

    /// Handle every completion waiting, then hand the provided buffers they used back.
    fn reap(&mut self, w: &mut Worker, cqes: &mut Vec<(u64, i32, u32)>) -> Result<(), BenchError> {
        cqes.clear();
        cqes.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        let mut recycled = false;
        for &(ud, res, flags) in cqes.iter() {
            recycled |= self.complete(w, ud, res, flags)?;
        }
        if recycled {
            self.bufs.as_ref().expect("recycled into it").publish();
        }
        Ok(())
    }

    /// One completion. `true` when it returned a provided buffer to the ring.
    fn complete(
        &mut self,
        w: &mut Worker,
        ud: u64,
        res: i32,
        flags: u32,
    ) -> Result<bool, BenchError> {
        let slot = (ud >> 8) as usize;
        let op = ud & 0xff;
        // A multishot receive stays in flight until a completion without MORE.
        let ended = !cqueue::more(flags);
        if ended {
            self.in_flight -= 1;
        }
        match op {
            OP_CONNECT => self.io[slot].connect = false,
            OP_RECV => self.io[slot].recv &= !ended,
            _ => self.io[slot].send = false,
        }
        if self.io[slot].finishing {
            return Ok(self.complete_finishing(slot, flags));
        }
        match op {
            OP_CONNECT if res == 0 => {
                w.connected(slot, Ok(()));
                if w.conns[slot].wants_recv() {
                    self.arm_recv(w, slot)?;
                }
                Ok(false)
            }
            OP_CONNECT => {
                w.connected(slot, Err(-res));
                Ok(false)
            }
            OP_RECV => self.received(w, slot, res, flags, ended),
            _ => {
                self.sent(w, slot, res);
                Ok(false)
            }
        }
    }

    /// A completion for a connection being wound down: its bytes are not decoded; its
    /// provided buffer goes back; its socket closes with its last operation.
    fn complete_finishing(&mut self, slot: usize, flags: u32) -> bool {
        let mut recycled = false;
        if let (Some(bid), Some(bufs)) = (cqueue::buffer_select(flags), self.bufs.as_mut()) {
            bufs.push(bid);
            recycled = true;
        }
        if !self.io[slot].busy() {
            self.close(slot);
        }
        recycled
    }

    /// A receive completed: decode the bytes (from a provided buffer, handed straight back,
    /// or from the connection's own buffer), and re-arm when the receive ended.
    fn received(
        &mut self,
        w: &mut Worker,
        slot: usize,
        res: i32,
        flags: u32,
        ended: bool,
    ) -> Result<bool, BenchError> {
        let mut recycled = false;
        if res > 0 {
            match cqueue::buffer_select(flags).zip(self.bufs.as_mut()) {
                Some((bid, bufs)) => {
                    w.received_bytes(slot, bufs.get(bid, res as usize));
                    bufs.push(bid);
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
            self.arm_recv(w, slot)?;
        }
        Ok(recycled)
    }

    /// A send completed: what is left of the pending bytes goes in the next batch.
    fn sent(&mut self, w: &mut Worker, slot: usize, res: i32) {
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

//! The epoll engine: the fallback where io_uring is not allowed, and the baseline it is
//! measured against (`--engine epoll`).
//!
//! Level-triggered, one wait per batch, then per ready connection one `recv` (again only if it
//! filled the buffer) and, for every connection with bytes queued, one `send`. Interest in
//! `EPOLLOUT` is taken only while a send is short. Each send is stamped with a clock read just
//! before it, since sends go out one system call at a time.
//!
//! The wait is `epoll_pwait2` (Linux 5.11), whose timeout is a `timespec`: `epoll_wait` counts
//! in milliseconds, so an open-loop message due in 0.3 ms would leave up to 0.7 ms late and
//! the messages of a whole millisecond would leave together. Older kernels fall back to
//! `epoll_wait`, and the engine's name says so.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::error::BenchError;
use crate::worker::{Next, Worker};

/// Per connection: its socket and what epoll watches.
struct Io {
    stream: Option<TcpStream>,
    connecting: bool,
    want_out: bool,
}

struct Epoll {
    fd: OwnedFd,
    /// `epoll_pwait2` answered ENOSYS: wait with `epoll_wait`'s milliseconds.
    coarse: bool,
}

impl Epoll {
    fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, coarse: false })
    }

    fn ctl(&self, op: i32, fd: i32, events: u32, slot: usize) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: slot as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; the kernel copies it.
        let rc = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(
        &mut self,
        events: &mut Vec<libc::epoll_event>,
        timeout: Duration,
    ) -> io::Result<usize> {
        let n = if self.coarse {
            self.wait_ms(events, timeout)
        } else {
            let n = self.wait_ns(events, timeout);
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.coarse = true;
                return self.wait(events, timeout);
            }
            n
        };
        // SAFETY: the kernel wrote `n` events into the vector's buffer (capacity checked by
        // the callee); `set_len` covers only what it wrote.
        unsafe {
            if n < 0 {
                let err = io::Error::last_os_error();
                events.set_len(0);
                return if err.kind() == io::ErrorKind::Interrupted {
                    Ok(0)
                } else {
                    Err(err)
                };
            }
            events.set_len(n as usize);
            Ok(n as usize)
        }
    }

    /// `epoll_pwait2` through syscall(2), so that a C library older than the kernel is no
    /// obstacle; the raw result (-1 and errno on failure).
    fn wait_ns(&self, events: &mut Vec<libc::epoll_event>, timeout: Duration) -> i32 {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the kernel writes at most `capacity` events into the vector's buffer, which
        // has that capacity, and reads `ts`, which outlives the call; no signal mask is given.
        unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.capacity() as i32,
                &ts as *const libc::timespec,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            ) as i32
        }
    }

    /// `epoll_wait`, whose timeout is whole milliseconds.
    fn wait_ms(&self, events: &mut Vec<libc::epoll_event>, timeout: Duration) -> i32 {
        // Round up: a 0.4 ms wait must not become a busy loop of 0 ms waits.
        let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
        // SAFETY: the kernel writes at most `capacity` events into the vector's buffer.
        unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.capacity() as i32,
                ms,
            )
        }
    }
}

const IN: u32 = libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32;
const OUT: u32 = libc::EPOLLOUT as u32;

/// Drive `w` to the end on epoll.
pub fn run(w: &mut Worker) -> Result<(), BenchError> {
    let n = w.conns.len();
    w.engine = "epoll".to_owned();
    let mut ep = Epoll::new().map_err(|e| BenchError::io("epoll_create1", e))?;
    let mut io: Vec<Io> = (0..n)
        .map(|_| Io {
            stream: None,
            connecting: false,
            want_out: false,
        })
        .collect();
    let mut events: Vec<libc::epoll_event> = Vec::with_capacity(n.clamp(16, 1024));
    // (Nothing is registered yet: each wait lasts its whole timeout.)
    w.calibrate_wake(|d| {
        let _ = ep.wait(&mut events, d);
    });
    loop {
        let next = w.poll();
        for slot in std::mem::take(&mut w.ctx.queues.finished) {
            // Closing the socket also removes it from the epoll set.
            if io[slot].stream.take().is_some() {
                w.closed(slot);
            }
        }
        for slot in std::mem::take(&mut w.ctx.queues.reconnect) {
            connect(w, &ep, &mut io[slot], slot)?;
        }
        if next == Next::Exit {
            break;
        }

        let mut dirty = std::mem::take(&mut w.ctx.queues.dirty);
        for &slot in &dirty {
            w.conns[slot].clear_dirty();
            write_out(w, &ep, &mut io[slot], slot);
        }
        dirty.clear();
        w.ctx.queues.dirty = dirty;

        ep.wait(&mut events, w.timeout(next))
            .map_err(|e| BenchError::io("epoll_wait", e))?;
        if ep.coarse && w.engine == "epoll" {
            w.engine = "epoll (millisecond waits: epoll_pwait2 needs Linux 5.11)".to_owned();
        }
        w.set_now(w.clock());
        for ev in &events {
            let (slot, flags) = (ev.u64 as usize, ev.events);
            let conn_io = &mut io[slot];
            if conn_io.stream.is_none() || w.conns[slot].phase() == crate::conn::Phase::Done {
                continue;
            }
            if conn_io.connecting {
                conn_io.connecting = false;
                let stream = conn_io.stream.as_ref().expect("checked");
                match stream.take_error() {
                    Ok(None) => {
                        let _ = ep.ctl(libc::EPOLL_CTL_MOD, stream.as_raw_fd(), IN, slot);
                        w.connected(slot, Ok(()));
                    }
                    Ok(Some(err)) | Err(err) => {
                        w.connected(slot, Err(err.raw_os_error().unwrap_or(libc::EIO)))
                    }
                }
                continue;
            }
            if flags & (IN | libc::EPOLLHUP as u32 | libc::EPOLLERR as u32) != 0 {
                read_in(w, conn_io, slot);
            }
            if flags & OUT != 0 && w.conns[slot].phase() != crate::conn::Phase::Done {
                write_out(w, &ep, conn_io, slot);
            }
        }
    }
    Ok(())
}

/// A new non-blocking socket for `slot`, connecting; registered with epoll.
fn connect(w: &mut Worker, ep: &Epoll, cio: &mut Io, slot: usize) -> Result<(), BenchError> {
    *cio = Io {
        stream: None,
        connecting: false,
        want_out: false,
    };
    let addr: socket2::SockAddr = w.ctx.targets[w.conns[slot].target].addr.into();
    let socket = match crate::sys::tcp_socket(&addr, w.conns[slot].source, true) {
        Ok(s) => s,
        Err(err) => {
            w.failed(slot, err.raw_os_error().unwrap_or(libc::EIO), "socket");
            return Ok(());
        }
    };
    let connected = match socket.connect(&addr) {
        Ok(()) => true,
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(err) => {
            // Kept until the worker hands the slot back, so that closing it is what restarts
            // a `connect` slot, as with a connect that fails later.
            cio.stream = Some(socket.into());
            w.connected(slot, Err(err.raw_os_error().unwrap_or(libc::EIO)));
            return Ok(());
        }
    };
    let stream: TcpStream = socket.into();
    let interest = if connected { IN } else { IN | OUT };
    ep.ctl(libc::EPOLL_CTL_ADD, stream.as_raw_fd(), interest, slot)
        .map_err(|e| BenchError::io("epoll_ctl", e))?;
    *cio = Io {
        stream: Some(stream),
        connecting: !connected,
        want_out: false,
    };
    if connected {
        w.connected(slot, Ok(()));
    }
    Ok(())
}

/// Read what is there: once, again only while reads fill the buffer.
fn read_in(w: &mut Worker, cio: &mut Io, slot: usize) {
    let Some(mut stream) = cio.stream.as_ref() else {
        return;
    };
    loop {
        let conn = &mut w.conns[slot];
        if !conn.wants_recv() {
            return;
        }
        let buf = conn.recv_buf();
        let cap = buf.len();
        match stream.read(buf) {
            Ok(0) => return w.eof(slot),
            Ok(k) => {
                w.received(slot, k);
                if k < cap {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return w.failed(slot, e.raw_os_error().unwrap_or(libc::EIO), "recv"),
        }
    }
}

/// Send what the connection has queued until done or the socket is full.
fn write_out(w: &mut Worker, ep: &Epoll, cio: &mut Io, slot: usize) {
    let Some(mut stream) = cio.stream.as_ref() else {
        return;
    };
    if cio.connecting {
        return;
    }
    loop {
        let now = w.clock();
        let conn = &mut w.conns[slot];
        if conn.phase() == crate::conn::Phase::Done {
            return;
        }
        if conn.pending().is_empty() {
            if cio.want_out {
                cio.want_out = false;
                let _ = ep.ctl(libc::EPOLL_CTL_MOD, stream.as_raw_fd(), IN, slot);
            }
            return;
        }
        // `pending` moved the queued messages into the send buffer: they leave now.
        conn.stamp(now, &mut w.ctx);
        // std's TcpStream::write is send(2) with MSG_NOSIGNAL.
        match stream.write(conn.pending()) {
            Ok(k) => conn.on_sent(k),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !cio.want_out {
                    cio.want_out = true;
                    let _ = ep.ctl(libc::EPOLL_CTL_MOD, stream.as_raw_fd(), IN | OUT, slot);
                }
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return w.failed(slot, e.raw_os_error().unwrap_or(libc::EIO), "send"),
        }
    }
}

//! The epoll engine: the fallback where io_uring is not allowed, and the baseline it is
//! measured against (`--engine epoll`).
//!
//! Level-triggered, one `epoll_wait` per batch, then per ready connection one `recv` (again
//! only if it filled the buffer) and, for every connection with bytes queued, one `send`.
//! Interest in `EPOLLOUT` is taken only while a send is short. Each send is stamped with a
//! clock read just before it, since sends go out one system call at a time.

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

struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: i32, fd: i32, events: u32, slot: usize) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: slot as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; the kernel copies it.
        let rc = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut Vec<libc::epoll_event>, timeout: Duration) -> io::Result<usize> {
        // Round up: a 0.4 ms wait must not become a busy loop of 0 ms waits.
        let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
        // SAFETY: the kernel writes at most `capacity` events into the vector's buffer, which
        // has that capacity; `set_len` then covers only what it wrote.
        unsafe {
            let n = libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.capacity() as i32,
                ms,
            );
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
}

const IN: u32 = libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32;
const OUT: u32 = libc::EPOLLOUT as u32;

/// Drive `w` to the end on epoll.
pub fn run(w: &mut Worker) -> Result<(), BenchError> {
    let n = w.conns.len();
    w.engine = "epoll".to_owned();
    let ep = Epoll::new().map_err(|e| BenchError::io("epoll_create1", e))?;
    let mut io: Vec<Io> = (0..n)
        .map(|_| Io {
            stream: None,
            connecting: false,
            want_out: false,
        })
        .collect();
    let mut events: Vec<libc::epoll_event> = Vec::with_capacity(n.clamp(16, 1024));
    loop {
        let next = w.poll();
        for slot in std::mem::take(&mut w.ctx.finished) {
            // Closing the socket also removes it from the epoll set.
            if io[slot].stream.take().is_some() {
                w.closed(slot);
            }
        }
        for slot in std::mem::take(&mut w.ctx.reconnect) {
            connect(w, &ep, &mut io[slot], slot)?;
        }
        let Next::Wait(wait) = next else { break };

        let mut dirty = std::mem::take(&mut w.ctx.dirty);
        for &slot in &dirty {
            w.conns[slot].clear_dirty();
            write_out(w, &ep, &mut io[slot], slot);
        }
        dirty.clear();
        w.ctx.dirty = dirty;

        ep.wait(&mut events, wait)
            .map_err(|e| BenchError::io("epoll_wait", e))?;
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
        conn.stamp(now);
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

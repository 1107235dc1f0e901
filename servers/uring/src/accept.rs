//! Accepting: one multishot accept per listener (Linux 5.19), or a single-shot accept re-armed
//! after each connection (`--no-multishot-accept`); with registered files the kernel puts the
//! new socket straight into a free slot of the file table (a direct descriptor), so it never
//! takes a place in the process's descriptor table.

use std::os::fd::AsRawFd;
use std::time::Duration;

use io_uring::{opcode, types};
use wsport_server_common::faults::Faults;
use wsport_server_common::session::Session;

use crate::conn::Conn;
use crate::error::UringError;
use crate::worker::{Op, Worker};

/// How long to wait before accepting again after an accept failed (EMFILE, ENFILE, a full
/// file table): the listener survives, and this thread does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

impl<F: Faults> Worker<F> {
    /// Arm an accept on every listener that has none in flight.
    pub fn arm_accepts(&mut self) -> Result<(), UringError> {
        if self.accept_retry.is_some_and(|at| self.now < at) {
            return Ok(());
        }
        self.accept_retry = None;
        for index in 0..self.listeners.len() {
            if self.listeners[index].armed {
                continue;
            }
            let fd = types::Fd(self.listeners[index].socket.as_raw_fd());
            let direct = self.features.registered_files;
            let entry = if self.features.multishot_accept {
                opcode::AcceptMulti::new(fd)
                    .allocate_file_index(direct)
                    .build()
            } else {
                let slot = direct.then(types::DestinationSlot::auto_target);
                opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                    .file_index(slot)
                    .build()
            };
            self.listeners[index].armed = true;
            // SAFETY: no peer address is asked for: the entry points at no memory.
            unsafe { self.push(entry.user_data(Op::Accept.user_data(index as u32)))? };
        }
        Ok(())
    }

    /// An accept completed: `result` is the new socket's descriptor or registered slot.
    pub fn on_accept(&mut self, index: usize, result: i32, more: bool) -> Result<(), UringError> {
        if !more {
            self.listeners[index].armed = false;
        }
        if result < 0 {
            if self.draining.is_none() {
                let error = std::io::Error::from_raw_os_error(-result);
                eprintln!("wsport-uring: accept failed: {error}");
                self.accept_retry = Some(self.now + ACCEPT_BACKOFF);
            }
            return Ok(());
        }
        let key = result as u32;
        if self.draining.is_some() {
            return self.push_close(key);
        }
        let scheme = self.listeners[index].scheme;
        let shared = &self.shared;
        let session = match Session::accept(
            &shared.config,
            &self.counters,
            &shared.limit,
            scheme,
            self.now,
        ) {
            Ok(session) => session,
            Err(error) => {
                eprintln!("wsport-uring: TLS setup failed: {error}");
                return self.push_close(key);
            }
        };
        self.next_id += 1;
        let spill = if self.bufs.is_some() {
            Vec::new()
        } else {
            Session::new_buffer()
        };
        let raw = shared.config.raw_tcp;
        let mut conn = Conn::new(self.next_id, session, spill, self.now, raw);
        if let Some(fanout) = &self.fanout {
            let (subscription, waker) = fanout.subscribe(key);
            conn.subscription = Some(subscription);
            conn.waker = Some(waker);
        }
        let slot = key as usize;
        if self.conns.len() <= slot {
            self.conns.resize_with(slot + 1, || None);
        }
        self.conns[slot] = Some(conn);
        self.open += 1;
        self.ensure_recv(key)?;
        self.rearm(key);
        Ok(())
    }
}

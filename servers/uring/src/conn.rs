//! One connection's state beside its [`Session`]: which operations the kernel holds for it,
//! the buffer its reply is being sent from, and the spill buffer that keeps a partial frame.
//!
//! Where received bytes live (RFC 6455 frames may arrive split across reads):
//! - a provided buffer, when nothing is pending: the session works on it in place and the
//!   reply is sent from it; once sent, its unconsumed tail (a partial frame) is copied to the
//!   spill and the buffer goes back to the ring;
//! - the spill, when a partial frame is pending or a send is in flight: bytes are appended
//!   there and the provided buffer goes back at once. The spill is freed as soon as it is
//!   empty, so an idle connection holds no read buffer;
//! - with `--no-buffer-ring`, the spill is the connection's own read buffer, kept for life.

use std::ops::Range;
use std::task::Waker;
use std::time::Instant;

use wsport_core::conn::compact;
use wsport_server_common::deadline::Alarm;
use wsport_server_common::hub::Subscription;
use wsport_server_common::session::{Control, End, Session, Step, WRITE_TIMEOUT};

use crate::spills;

/// Input kept while a reply waits for the peer, past which reading pauses.
pub const PAUSE_AT: usize = 64 * 1024;

/// Where the bytes being sent live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A provided buffer, lent by the ring under this id.
    Provided(u16),
    /// The connection's spill.
    Spill,
    /// A ping or close frame made by a timer or by shutdown.
    Control,
}

/// A reply being sent: the kernel reads `buf[sent..end]`.
#[derive(Debug)]
pub struct Outgoing {
    pub buf: Vec<u8>,
    pub held: Held,
    pub sent: usize,
    pub end: usize,
    /// Input processed up to here: what follows is kept.
    pub consumed: usize,
    /// Room the frame under way needs.
    pub need: Option<usize>,
    /// How the connection ends once this is sent.
    pub then: Option<End>,
}

impl Outgoing {
    /// The reply to `step`, made in `buf`.
    pub fn reply(buf: Vec<u8>, held: Held, step: &Step) -> Outgoing {
        let Range { start, end } = step.output.clone();
        Outgoing {
            buf,
            held,
            sent: start,
            end,
            consumed: step.consumed,
            need: step.need,
            then: step.end,
        }
    }

    /// A control frame (or nothing, just an ending) from a timer or from shutdown.
    pub fn control(control: Control) -> Outgoing {
        Outgoing {
            end: control.output.len(),
            buf: control.output,
            held: Held::Control,
            sent: 0,
            consumed: 0,
            need: None,
            then: control.end,
        }
    }

    /// The bytes left to send.
    pub fn remaining(&self) -> &[u8] {
        &self.buf[self.sent..self.end]
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    /// Our FIN is sent: discard input until the peer's FIN or this instant (see `End::Linger`).
    Linger(Instant),
    /// Ending: no new operations; closed once none is in flight.
    Closing,
}

pub struct Conn {
    /// Tells this connection from a later one under the same key.
    pub id: u64,
    pub session: Session,
    /// See the module doc.
    pub spill: Vec<u8>,
    /// The spill holds bytes the session has not seen.
    pub fresh: bool,
    /// The reply whose send is in flight.
    pub out: Option<Outgoing>,
    /// Control output waiting for the send in flight.
    pub queued: Option<Control>,
    /// A receive is in flight (multishot: until a completion without MORE).
    pub recv: bool,
    /// The multishot receive ended for want of buffers; re-armed once some come back.
    pub starved: bool,
    /// The multishot receive was cancelled to pause reading (see [`Conn::flooded`]).
    pub recv_cancelled: bool,
    /// Shutdown operations in flight.
    pub shutdowns: u8,
    /// Both directions were shut down, to end the operations in flight.
    pub shut_both: bool,
    pub state: State,
    pub alarm: Alarm,
    /// When the send in flight started, for the write timeout.
    pub send_since: Instant,
    /// `--raw-tcp`: bytes are echoed as they come; the session is never handed them and its
    /// deadlines (handshake, idle, heartbeat) do not apply.
    pub raw: bool,
    /// `--broadcast`: this connection's place in the hub, and the waker that lists it ready.
    pub subscription: Option<Subscription>,
    pub waker: Option<Waker>,
}

impl Conn {
    pub fn new(id: u64, session: Session, spill: Vec<u8>, now: Instant, raw: bool) -> Conn {
        Conn {
            id,
            session,
            spill,
            fresh: false,
            out: None,
            queued: None,
            recv: false,
            starved: false,
            recv_cancelled: false,
            shutdowns: 0,
            shut_both: false,
            state: State::Open,
            alarm: Alarm::default(),
            send_since: now,
            raw,
            subscription: None,
            waker: None,
        }
    }

    /// Whether the kernel holds an operation of this connection.
    pub fn busy(&self) -> bool {
        self.recv || self.out.is_some() || self.shutdowns > 0
    }

    /// When this connection's timer must fire: its session's next deadline, the write timeout
    /// of a send in flight, or the end of its linger.
    pub fn wake_at(&self) -> Option<Instant> {
        match self.state {
            State::Open => {
                let write = self.out.as_ref().map(|_| self.send_since + WRITE_TIMEOUT);
                let session = if self.raw {
                    None
                } else {
                    self.session.next_deadline()
                };
                match (session, write) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Linger(at) => Some(at),
            State::Closing => None,
        }
    }

    /// A send is in flight (the peer reads slower than it writes) and the spill already holds
    /// [`PAUSE_AT`] bytes: stop receiving until the send completes, so a client that never
    /// reads leaves the rest in its socket (TCP flow control) instead of in our memory.
    pub fn flooded(&self) -> bool {
        self.out.is_some() && self.spill.len() >= PAUSE_AT
    }

    /// Bytes received while the session cannot take them at once.
    pub fn absorb(&mut self, bytes: &[u8]) {
        if self.spill.capacity() == 0 {
            self.spill = spills::take();
        }
        self.spill.extend_from_slice(bytes);
        self.fresh = true;
    }

    /// The send of `out` is complete: keep its unconsumed input in front of the spill, and
    /// hand back the provided buffer it used, if any. With `own_buffer` the spill is the
    /// connection's read buffer and is kept; otherwise an empty spill is freed.
    pub fn settle(&mut self, out: Outgoing, own_buffer: bool) -> Option<(u16, Vec<u8>)> {
        let mut lent = None;
        match out.held {
            Held::Provided(bid) => {
                if out.consumed < out.buf.len() {
                    if self.spill.capacity() == 0 {
                        self.spill = spills::take();
                    }
                    let tail = &out.buf[out.consumed..];
                    self.spill.splice(0..0, tail.iter().copied());
                }
                lent = Some((bid, out.buf));
            }
            Held::Spill => {
                let mut buf = out.buf;
                compact(&mut buf, out.consumed);
                buf.extend_from_slice(&self.spill);
                spills::give(std::mem::replace(&mut self.spill, buf));
            }
            Held::Control => {}
        }
        if let Some(need) = out.need {
            self.spill.reserve(need.saturating_sub(self.spill.len()));
        }
        if self.spill.is_empty() && !own_buffer {
            spills::give(std::mem::take(&mut self.spill));
        }
        lent
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use clap::Parser;
    use wsport_server_common::cli::ServerArgs;
    use wsport_server_common::counters::{ConnectionLimit, Counters};
    use wsport_server_common::Scheme;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn conn() -> Conn {
        let flags = Flags::parse_from(["wsport-uring", "--listen", "ws://127.0.0.1:0"]);
        let config = Arc::new(flags.server.into_config().expect("default flags are valid"));
        let limit = ConnectionLimit::new(10);
        let now = Instant::now();
        let session = Session::accept(&config, &Counters::new(), &limit, Scheme::Ws, now)
            .expect("a ws session");
        Conn::new(1, session, Vec::new(), now, false)
    }

    fn sent(buf: &[u8], held: Held, consumed: usize) -> Outgoing {
        Outgoing {
            buf: buf.to_vec(),
            held,
            sent: 0,
            end: 0,
            consumed,
            need: None,
            then: None,
        }
    }

    #[test]
    fn a_partial_frame_in_a_provided_buffer_goes_before_what_arrived_meanwhile() {
        let mut conn = conn();
        conn.absorb(b"later");
        let lent = conn.settle(sent(b"replyPART", Held::Provided(5), 5), false);
        assert_eq!(conn.spill, b"PARTlater");
        let (bid, buf) = lent.expect("the provided buffer goes back");
        assert_eq!((bid, &buf[..]), (5, &b"replyPART"[..]));
    }

    #[test]
    fn reading_pauses_only_while_a_reply_waits_and_the_spill_is_full() {
        let mut conn = conn();
        conn.absorb(&vec![0; PAUSE_AT]);
        assert!(
            !conn.flooded(),
            "no reply in flight: the session needs the bytes"
        );
        conn.out = Some(sent(b"reply", Held::Spill, 5));
        assert!(conn.flooded());
        conn.spill.truncate(PAUSE_AT - 1);
        assert!(!conn.flooded());
    }

    #[test]
    fn an_empty_spill_is_freed_unless_it_is_the_connections_own_buffer() {
        let mut conn = conn();
        let mut big = Vec::with_capacity(4096);
        big.extend_from_slice(b"all consumed");
        let out = Outgoing {
            buf: big,
            ..sent(b"", Held::Spill, 12)
        };
        assert!(conn.settle(out, false).is_none());
        assert_eq!(conn.spill.capacity(), 0);
        let mut own = Vec::with_capacity(4096);
        own.extend_from_slice(b"all consumed");
        let out = Outgoing {
            buf: own,
            ..sent(b"", Held::Spill, 12)
        };
        conn.settle(out, true);
        assert!(conn.spill.is_empty() && conn.spill.capacity() >= 4096);
    }

    #[test]
    fn the_spill_keeps_its_unconsumed_tail_then_what_arrived() {
        let mut conn = conn();
        conn.absorb(b"+new");
        let lent = conn.settle(sent(b"echoTAIL", Held::Spill, 4), false);
        assert!(lent.is_none());
        assert_eq!(conn.spill, b"TAIL+new");
    }

    #[test]
    fn a_control_frame_leaves_the_spill_alone() {
        let mut conn = conn();
        conn.absorb(b"half a frame");
        assert!(conn
            .settle(sent(b"ping", Held::Control, 0), false)
            .is_none());
        assert_eq!(conn.spill, b"half a frame");
        assert!(conn.fresh);
    }

    #[test]
    fn only_an_open_connection_with_a_send_in_flight_has_a_write_deadline() {
        let mut conn = conn();
        let handshake = conn.wake_at().expect("the handshake timeout");
        conn.out = Some(sent(b"x", Held::Control, 0));
        assert_eq!(
            conn.wake_at(),
            Some(handshake.min(conn.send_since + WRITE_TIMEOUT))
        );
        assert!(conn.busy());
        conn.state = State::Closing;
        assert_eq!(conn.wake_at(), None);
    }
}

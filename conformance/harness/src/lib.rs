//! wsport-harness: the client-side pieces both test harnesses need, written once.
//!
//! The conformance suite (`wsport-conformance`) and the Autobahn-style runner
//! (`wsport-autobahn`) drive the server binaries over real sockets. Both need to build any
//! client frame, valid or not, decode what a server sends, parse an HTTP response head, and a
//! few system calls std does not offer. They share this crate for those and nothing else, so
//! each keeps its own cases and verdicts.
//!
//! Like the harnesses, it shares no code with `wsport-core`: a checker that shared its framing
//! code with the servers it judges would agree with their bugs.
//!
//! - [`frame`]: RFC 6455 §5 framing from the client side (encode anything, decode strictly
//!   enough to delimit, keep every bit the server sent).
//! - [`http`]: the server's HTTP response head (httparse) and the §4 key/accept computation.
//! - [`rng`]: masking keys and nonces without an entropy crate.
//! - [`sys`]: `poll(2)`, `SO_LINGER` 0, `RLIMIT_NOFILE`, `kill(2)`, the io_uring probe; the
//!   only `unsafe` here.
//! - [`tls`]: a certificate verifier for servers that make up their own certificate.

#![deny(unsafe_code)]

pub mod frame;
pub mod http;
pub mod rng;
pub mod sys;
pub mod tls;

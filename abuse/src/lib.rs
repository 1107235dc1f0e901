//! wsport-abuse: hostile clients to run beside a measured load.
//!
//! Each kind of abuse ([`Kind`]) opens real connections to a server, over ws or wss
//! ([`stream::Stream`]), and records how each ended ([`Outcome`]): the HTTP status, the close
//! code, the TLS alert, a timeout, an EOF or a reset, and how long after it opened. [`run`]
//! holds the slowloris and never-read connections and churns the others at a paced rate until
//! a deadline and a count; [`Report`] summarises per kind and says whether every connection
//! ended the RFC way, and, with a server PID, whether the server's RSS stayed under the bound
//! of [`rss`]. [`summary`] turns a run-bench abuse directory into its markdown section.

pub mod alert;
pub mod attack;
pub mod hold;
pub mod kind;
pub mod outcome;
pub mod report;
pub mod rss;
pub mod run;
pub mod slowloris;
pub mod stream;
pub mod summary;
pub mod target;
pub mod tls;
pub mod tls_attack;
pub mod wire;

pub use attack::attack;
pub use kind::Kind;
pub use outcome::{Outcome, Record};
pub use report::Report;
pub use run::{run, Plan};
pub use target::Target;

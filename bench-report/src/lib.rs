//! wsport-bench-report: the documents of a result directory, read back from its runs
//! (`*.json` written by `wsport-bench --json`, or the directory's `runs.jsonl`).
//!
//! The generator (`wsport-bench`) writes run records; this crate reads them and never the
//! reverse: it depends on no generator code, only on the record's shared units and rules
//! (`wsport-bench-record`). The `wsport-bench` binary calls [`publish`] for `report` and
//! [`compare`] / [`paired`] for `compare`.
//!
//! Layout, top down:
//! - [`publish`]: `wsport-bench report DIR`, regenerates runs.jsonl, the plots and summary.md;
//! - [`summary`]: summary.md, with the sections of [`verdict`] (does a ranking hold under
//!   every client engine), [`sweep`] (the load axis), [`floor`] (runtime floor +
//!   WebSocket layer) and [`broadcast`] (fan-out: CPU per delivery);
//! - [`plot`], [`chart`], [`svg`]: the SVG plots;
//! - [`compare`], [`paired`], [`median_interval`]: the regression verdicts;
//! - [`runs`]: a directory's runs, parsed into the figures every report uses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broadcast;
pub mod chart;
pub mod compare;
pub mod deploy;
pub mod floor;
pub mod median_interval;
pub mod one_engine;
pub mod paired;
pub mod placement;
pub mod plot;
pub mod publish;
pub mod rounds;
pub mod runs;
pub mod scale;
pub mod summary;
pub mod svg;
pub mod sweep;
pub mod verdict;

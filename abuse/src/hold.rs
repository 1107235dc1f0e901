//! Never-read connections held together: each sends until the server stops reading it, then
//! stays open, so the server carries them all at once until the run ends.

use std::thread;
use std::time::{Duration, Instant};

use crate::attack::never_read;
use crate::kind::Kind;
use crate::outcome::{excuse_slow, Outcome, Record};
use crate::stream::Stream;
use crate::target::Target;

/// Open up to `count` never-read connections, hold them until `until`, then reset them all.
pub fn hold_never_read(target: &Target, count: usize, until: Instant) -> Vec<Record> {
    let mut records = Vec::new();
    let mut held: Vec<Stream> = Vec::new();
    while held.len() < count && Instant::now() < until {
        let started = Instant::now();
        let (outcome, stream) = never_read(target);
        let outcome = excuse_slow(
            Kind::NeverRead,
            outcome,
            started.elapsed(),
            target.handshake_timeout,
        );
        let queued_bytes = match outcome {
            Outcome::Blocked { bytes } | Outcome::Unbounded { bytes } => Some(bytes),
            _ => None,
        };
        records.push(Record {
            kind: Kind::NeverRead,
            outcome,
            lifetime: started.elapsed(),
            queued_bytes,
        });
        held.extend(stream);
    }
    while Instant::now() < until {
        thread::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        );
    }
    for stream in held {
        let _ = stream.reset();
    }
    records
}

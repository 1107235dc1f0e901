//! `--hlog`: HdrHistogram interval logs, log format 1.3, as Java's `HistogramLogWriter`
//! writes them and `HistogramLogProcessor`/`HistogramLogAnalyzer` (and this crate's
//! `IntervalLogIterator`) read them.
//!
//! ```text
//! #[wsport-bench echo-64B-100c-1t-ws-9001: round-trip latency in nanoseconds]
//! #[Histogram log format version 1.3]
//! #[StartTime: 1700000000.000 (seconds since epoch)]
//! #[BaseTime: 1700000000.000 (seconds since epoch)]
//! #[MaxValueDivisor: 1000000.000]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! 0.000,1.000,0.412,HISTFAAAA...
//! ```
//!
//! One line per second of the measured window (the warmup is not logged); for scheduled
//! workloads (`rate`, `hold`, `connect --rate`), a second line per second tagged
//! `Tag=uncorrected` holds the latencies from the actual send times (the untagged line is from
//! the intended ones), and a third tagged `Tag=send_lag` how late the client sent (actual −
//! intended). Timestamps are
//! seconds since the window's start (BaseTime); values are nanoseconds, and the max column is
//! in milliseconds (divided by 10^6, as Java's writer does by default). Every line is flushed
//! as it is written, so a run that dies leaves every interval measured so far.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// The max column's divisor: nanoseconds to milliseconds.
const MAX_DIVISOR: f64 = 1e6;

/// An open interval log.
pub struct Hlog {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    bytes: Vec<u8>,
}

impl Hlog {
    /// Create the file and write the header; `start` is the wall-clock start of the window.
    pub fn create(path: &Path, start: SystemTime, title: &str) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        let secs = start
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        writeln!(out, "#[{title}]")?;
        writeln!(out, "#[Histogram log format version 1.3]")?;
        writeln!(out, "#[StartTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(out, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(out, "#[MaxValueDivisor: {MAX_DIVISOR:.3}]")?;
        writeln!(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")?;
        out.flush()?;
        Ok(Self {
            out,
            serializer: V2DeflateSerializer::new(),
            bytes: Vec::new(),
        })
    }

    /// Append one interval: `start` seconds after the window's start, `length` seconds long,
    /// with an optional tag (`Tag=NAME,` before the timestamp, as format 1.3 allows).
    pub fn write(
        &mut self,
        start: f64,
        length: f64,
        hist: &Histogram<u64>,
        tag: Option<&str>,
    ) -> io::Result<()> {
        self.bytes.clear();
        self.serializer
            .serialize(hist, &mut self.bytes)
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&self.bytes);
        let max = hist.max() as f64 / MAX_DIVISOR;
        if let Some(tag) = tag {
            write!(self.out, "Tag={tag},")?;
        }
        writeln!(self.out, "{start:.3},{length:.3},{max:.3},{encoded}")?;
        self.out.flush()
    }
}

impl Hlog {
    /// Append one interval of every histogram of `hists`: the latency untagged, the others
    /// tagged `uncorrected` and `send_lag`.
    pub fn write_interval(
        &mut self,
        start: f64,
        length: f64,
        hists: &crate::hists::Hists,
    ) -> io::Result<()> {
        self.write(start, length, &hists.latency, None)?;
        let tagged = [
            (&hists.uncorrected, "uncorrected"),
            (&hists.send_lag, "send_lag"),
        ];
        for (hist, tag) in tagged {
            if let Some(hist) = hist {
                self.write(start, length, hist, Some(tag))?;
            }
        }
        Ok(())
    }
}

/// A histogram as one base64 string: V2 compressed (deflate) encoding, as in an interval log
/// line, which every HdrHistogram implementation decodes.
pub fn encode_histogram(hist: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(hist, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&bytes),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn log_reads_back_with_the_standard_parser() {
        let dir = std::env::temp_dir().join(format!("wsport-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.hlog");
        let mut h = crate::hists::new_histogram();
        for v in [1_000u64, 50_000, 2_000_000] {
            h.record(v).unwrap();
        }
        let mut log = Hlog::create(&path, SystemTime::now(), "test").unwrap();
        log.write(0.0, 1.0, &h, None).unwrap();
        log.write(1.0, 0.5, &h, Some("uncorrected")).unwrap();
        drop(log);
        let text = std::fs::read(&path).unwrap();
        let mut intervals = 0;
        for entry in IntervalLogIterator::new(&text) {
            if let LogEntry::Interval(iv) = entry.unwrap() {
                assert_eq!(
                    iv.tag().map(|t| t.as_str()),
                    [None, Some("uncorrected")][intervals]
                );
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(iv.encoded_histogram())
                    .unwrap();
                let back: Histogram<u64> =
                    Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
                assert_eq!(back.len(), 3);
                assert_eq!(back.max(), h.max());
                assert!((iv.max() - h.max() as f64 / 1e6).abs() < 0.01);
                intervals += 1;
            }
        }
        assert_eq!(intervals, 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

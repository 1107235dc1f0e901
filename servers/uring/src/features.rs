//! Which io_uring features a ring uses: each on by default, each with a flag that turns it
//! off (for the per-feature table in the README), each checked against the kernel before
//! anything is bound, and all of them printed at start.

use clap::Args;

use crate::error::UringError;

/// The feature flags, flattened into the server's command line.
#[derive(Args, Debug, Clone, Copy)]
pub struct FeatureArgs {
    /// Accept with one single-shot accept per connection instead of one multishot accept per
    /// listener.
    #[arg(long)]
    pub no_multishot_accept: bool,
    /// Receive with one single-shot receive per read instead of one multishot receive per
    /// connection (multishot needs the buffer ring).
    #[arg(long)]
    pub no_multishot_recv: bool,
    /// Read into a buffer owned by each connection (16 KiB, held while the connection lives)
    /// instead of the thread's provided-buffer ring; implies --no-multishot-recv.
    #[arg(long)]
    pub no_buffer_ring: bool,
    /// Name sockets by plain descriptors instead of registered (direct) descriptors.
    #[arg(long)]
    pub no_registered_files: bool,
    /// Create the ring without SINGLE_ISSUER | DEFER_TASKRUN.
    #[arg(long)]
    pub no_defer_taskrun: bool,
    /// Enter the kernel once per operation instead of once per loop iteration.
    #[arg(long)]
    pub no_batch_submit: bool,
    /// Buffers in each thread's provided-buffer ring (a power of two, at most 32768). The
    /// kernel takes them in ring order, so the whole ring is the receive working set: 256 ×
    /// 4 KiB stays in cache where 1024 does not (measured: about 5% less CPU per message at
    /// 100 and 1,000 connections); a burst that empties it is re-armed once buffers return.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = parse_ring_entries)]
    pub buffers: u16,
    /// Size of each provided buffer, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(512..=1 << 20))]
    pub buffer_size: u32,
}

/// How a connection receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// One multishot receive per connection, into the provided-buffer ring.
    Multishot,
    /// A single-shot receive per read, into the provided-buffer ring.
    SingleProvided,
    /// A single-shot receive per read, into the connection's own buffer.
    OwnBuffer,
}

/// The features a ring is asked to use.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    pub multishot_accept: bool,
    pub receive: Receive,
    pub registered_files: bool,
    pub defer_taskrun: bool,
    pub batch_submit: bool,
    pub buffers: u16,
    pub buffer_size: usize,
}

impl From<FeatureArgs> for Features {
    fn from(args: FeatureArgs) -> Features {
        let receive = match (args.no_buffer_ring, args.no_multishot_recv) {
            (true, _) => Receive::OwnBuffer,
            (false, true) => Receive::SingleProvided,
            (false, false) => Receive::Multishot,
        };
        Features {
            multishot_accept: !args.no_multishot_accept,
            receive,
            registered_files: !args.no_registered_files,
            defer_taskrun: !args.no_defer_taskrun,
            batch_submit: !args.no_batch_submit,
            buffers: args.buffers,
            buffer_size: args.buffer_size as usize,
        }
    }
}

/// A feature's first kernel, as (major, minor), its name and the flag that turns it off.
struct Requirement {
    needs: (u32, u32),
    feature: &'static str,
    flag: Option<&'static str>,
}

impl Features {
    /// Refuse, naming the first feature this kernel lacks. `SINGLE_ISSUER | DEFER_TASKRUN` is
    /// not checked here: the ring is built with it where the kernel takes it (see `ring`).
    pub fn check_kernel(&self, release: &str) -> Result<(), UringError> {
        let version = parse_release(release);
        let missing = self
            .requirements()
            .into_iter()
            .find(|r| version.is_some_and(|v| v < r.needs));
        match missing {
            Some(r) => Err(UringError::Unavailable {
                feature: r.feature,
                needs: format_version(r.needs),
                kernel: release.to_owned(),
                flag: r.flag,
            }),
            None => Ok(()),
        }
    }

    fn requirements(&self) -> Vec<Requirement> {
        // Every ring needs the extended wait argument (a timeout on io_uring_enter, 5.11) and
        // IORING_OP_SHUTDOWN (5.11); closing a direct descriptor needs IORING_OP_CLOSE on a
        // fixed file (5.15).
        let mut all = vec![Requirement {
            needs: (5, 11),
            feature: "io_uring_enter with a timeout",
            flag: None,
        }];
        if self.multishot_accept {
            all.push(Requirement {
                needs: (5, 19),
                feature: "io_uring multishot accept",
                flag: Some("--no-multishot-accept"),
            });
        }
        if self.receive != Receive::OwnBuffer {
            all.push(Requirement {
                needs: (5, 19),
                feature: "an io_uring provided-buffer ring",
                flag: Some("--no-buffer-ring"),
            });
        }
        if self.receive == Receive::Multishot {
            all.push(Requirement {
                needs: (6, 0),
                feature: "io_uring multishot receive",
                flag: Some("--no-multishot-recv"),
            });
        }
        if self.registered_files {
            all.push(Requirement {
                needs: (5, 19),
                feature: "io_uring accept into registered files",
                flag: Some("--no-registered-files"),
            });
        }
        all
    }

    /// The features in use, for the start line (`defer_taskrun` as the ring was built).
    pub fn describe(&self, defer_taskrun: bool) -> String {
        let mut parts = vec![if self.multishot_accept {
            "multishot accept".to_owned()
        } else {
            "single-shot accept".to_owned()
        }];
        parts.push(match self.receive {
            Receive::Multishot => format!(
                "multishot recv (buffer ring {} × {} B)",
                self.buffers, self.buffer_size
            ),
            Receive::SingleProvided => format!(
                "single-shot recv (buffer ring {} × {} B)",
                self.buffers, self.buffer_size
            ),
            Receive::OwnBuffer => "single-shot recv (own buffer per connection)".to_owned(),
        });
        parts.push(if self.registered_files {
            "registered files".to_owned()
        } else {
            "plain descriptors".to_owned()
        });
        parts.push(match (self.defer_taskrun, defer_taskrun) {
            (_, true) => "single_issuer+defer_taskrun".to_owned(),
            (true, false) => "no defer_taskrun (needs Linux ≥ 6.1)".to_owned(),
            (false, false) => "no defer_taskrun".to_owned(),
        });
        parts.push(if self.batch_submit {
            "batched submit".to_owned()
        } else {
            "one enter per operation".to_owned()
        });
        parts.join(", ")
    }
}

/// `6.1.0-18-amd64` → (6, 1); `None` when unreadable (then nothing is refused up front and the
/// kernel's own error speaks).
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((major, minor))
}

fn format_version(version: (u32, u32)) -> &'static str {
    match version {
        (5, 11) => "5.11",
        (5, 19) => "5.19",
        (6, 0) => "6.0",
        _ => "a newer version",
    }
}

fn parse_ring_entries(text: &str) -> Result<u16, String> {
    let n: u16 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number from 1 to 32768"))?;
    if n == 0 || !n.is_power_of_two() || n > 32768 {
        return Err(format!("{n} is not a power of two from 1 to 32768"));
    }
    Ok(n)
}

/// This kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_on() -> Features {
        Features {
            multishot_accept: true,
            receive: Receive::Multishot,
            registered_files: true,
            defer_taskrun: true,
            batch_submit: true,
            buffers: 1024,
            buffer_size: 4096,
        }
    }

    #[test]
    fn releases_parse() {
        assert_eq!(parse_release("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.19.17"), Some((5, 19)));
        assert_eq!(parse_release("garbage"), None);
    }

    #[test]
    fn an_old_kernel_is_refused_with_the_feature_and_the_flag() {
        let error = all_on().check_kernel("5.15.0-91-generic").unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("unavailable: io_uring multishot accept needs Linux ≥ 5.19"),
            "{text}"
        );
        assert!(text.contains("--no-multishot-accept"), "{text}");
        let mut own = all_on();
        own.multishot_accept = false;
        own.registered_files = false;
        own.receive = Receive::OwnBuffer;
        assert!(own.check_kernel("5.15.0").is_ok());
        let mut single = own;
        single.receive = Receive::Multishot;
        let text = single.check_kernel("5.19.0").unwrap_err().to_string();
        assert!(
            text.contains("io_uring multishot receive needs Linux ≥ 6.0"),
            "{text}"
        );
    }

    #[test]
    fn a_new_kernel_takes_everything() {
        assert!(all_on().check_kernel("6.18.44").is_ok());
    }

    #[test]
    fn no_buffer_ring_means_own_buffers() {
        let mut args = FeatureArgs {
            no_multishot_accept: false,
            no_multishot_recv: false,
            no_buffer_ring: true,
            no_registered_files: false,
            no_defer_taskrun: false,
            no_batch_submit: false,
            buffers: 1024,
            buffer_size: 4096,
        };
        assert_eq!(Features::from(args).receive, Receive::OwnBuffer);
        args.no_buffer_ring = false;
        args.no_multishot_recv = true;
        assert_eq!(Features::from(args).receive, Receive::SingleProvided);
    }

    #[test]
    fn ring_entries_are_powers_of_two() {
        assert_eq!(parse_ring_entries("1024"), Ok(1024));
        assert!(parse_ring_entries("1000").is_err());
        assert!(parse_ring_entries("0").is_err());
    }
}

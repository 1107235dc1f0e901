//! A small xorshift generator for masking keys and handshake nonces. Masking keys only need
//! to be unpredictable to intermediaries (RFC 6455 section 10.3), not cryptographically
//! strong, and a conformance runner should not need an entropy crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock and a process-wide counter, so parallel cases differ.
    pub fn new() -> Rng {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Rng::seeded(
            nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id()) << 32,
        )
    }

    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// xorshift64*.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }

    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_ne_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_ne_bytes());
        out
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

//! Randomness for masking keys, handshake nonces and payloads. Masking keys only need to be
//! unpredictable to intermediaries (RFC 6455 §10.3), not cryptographically strong, and a
//! conformance harness should not need an entropy crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// splitmix64 over a process-wide counter seeded from the clock and the process id: every
/// call, from any thread, gets a different value.
pub fn next_random() -> u64 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    static STATE: OnceLock<AtomicU64> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        AtomicU64::new(nanos ^ u64::from(std::process::id()) << 32)
    });
    let mut z = state
        .fetch_add(GOLDEN, Ordering::Relaxed)
        .wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fresh masking key. Varying it per frame is what catches a server that unmasks with the
/// wrong key offset.
pub fn fresh_mask() -> [u8; 4] {
    (next_random() as u32).to_be_bytes()
}

/// xorshift64*: a cheap generator a connection owns, fast enough to fill megabytes of payload
/// a second on the client's share of a 2-core machine.
pub struct Rng(u64);

impl Rng {
    /// Seeded from [`next_random`], so generators made at the same instant differ.
    pub fn new() -> Rng {
        Rng::seeded(next_random())
    }

    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
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

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_vary() {
        assert_ne!(fresh_mask(), fresh_mask());
        let mut rng = Rng::new();
        assert_ne!(rng.mask(), rng.mask());
    }

    #[test]
    fn generators_made_together_differ() {
        assert_ne!(Rng::new().next_u64(), Rng::new().next_u64());
    }

    #[test]
    fn seeded_is_reproducible_and_sized() {
        let (mut a, mut b) = (Rng::seeded(7), Rng::seeded(7));
        assert_eq!(a.bytes(37), b.bytes(37));
        assert_eq!(a.bytes(0).len(), 0);
        assert!((0..1000).all(|_| a.below(10) < 10));
        assert_eq!(a.below(0), 0);
    }
}

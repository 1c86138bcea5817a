//! Seeded randomness for the dataset tools: named ChaCha streams for the generator, and a
//! keyed derivation (HMAC-SHA1 of seed and value) that gives the anonymizer the same
//! replacement for the same original everywhere without remembering it. It owns the byte
//! layout of every seed it derives; changing it changes all output, so it must not change.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha1_smol::Sha1;

/// The RNG used everywhere in the dataset tools (pinned through `rand_chacha`).
pub type Rng = ChaCha8Rng;

/// HMAC-SHA1 keyed by a seed, with the inner and outer pads precomputed.
#[derive(Clone)]
pub struct Keyed {
    inner: Sha1,
    outer: Sha1,
}

impl Keyed {
    /// A key derived from `seed` and a `purpose` label, so the generator and the anonymizer
    /// never share streams for the same seed.
    pub fn new(seed: u64, purpose: &str) -> Keyed {
        let mut key = [0u8; 64];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        let label = purpose.as_bytes();
        let n = label.len().min(56);
        key[8..8 + n].copy_from_slice(&label[..n]);
        let mut inner = Sha1::new();
        let mut outer = Sha1::new();
        let ipad: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
        inner.update(&ipad);
        outer.update(&opad);
        Keyed { inner, outer }
    }

    /// HMAC of `class` and `value` (separated so `("a","bc")` and `("ab","c")` differ).
    pub fn digest(&self, class: &str, value: &[u8]) -> [u8; 20] {
        self.digest_parts(class, &[value])
    }

    /// HMAC of `class` and the concatenation of `parts`, without copying them together.
    fn digest_parts(&self, class: &str, parts: &[&[u8]]) -> [u8; 20] {
        let mut inner = self.inner.clone();
        inner.update(&(class.len() as u64).to_le_bytes());
        inner.update(class.as_bytes());
        for part in parts {
            inner.update(part);
        }
        let mut outer = self.outer.clone();
        outer.update(&inner.digest().bytes());
        outer.digest().bytes()
    }

    /// A ChaCha stream determined by the key, `class` and `value`.
    pub fn rng(&self, class: &str, value: &[u8]) -> Rng {
        seeded(self.digest(class, value))
    }

    /// The stream of `rng(class, value ++ attempt as 4 little-endian bytes)`: a retry's
    /// stream after a replacement was refused, without building that message.
    pub fn rng_attempt(&self, class: &str, value: &[u8], attempt: u32) -> Rng {
        seeded(self.digest_parts(class, &[value, &attempt.to_le_bytes()]))
    }
}

fn seeded(digest: [u8; 20]) -> Rng {
    let mut seed = [0u8; 32];
    seed[..20].copy_from_slice(&digest);
    Rng::from_seed(seed)
}

/// Picks one item of a non-empty list.
pub fn pick<'a, R: rand::Rng>(rng: &mut R, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    /// The derivation is a pure function of seed, purpose, class and value, and each input
    /// changes it.
    #[test]
    fn derivation_depends_on_every_input() {
        let a = Keyed::new(1, "anon");
        assert_eq!(
            a.digest("name", b"ACME"),
            Keyed::new(1, "anon").digest("name", b"ACME")
        );
        assert_ne!(
            a.digest("name", b"ACME"),
            Keyed::new(2, "anon").digest("name", b"ACME")
        );
        assert_ne!(
            a.digest("name", b"ACME"),
            Keyed::new(1, "gen").digest("name", b"ACME")
        );
        assert_ne!(a.digest("name", b"ACME"), a.digest("phone", b"ACME"));
        assert_ne!(a.digest("a", b"bc"), a.digest("ab", b"c"));
        let x: u64 = a.rng("c", b"v").random();
        let y: u64 = a.rng("c", b"v").random();
        assert_eq!(x, y);
    }

    /// A retry's stream is the stream of the value with the attempt appended, so retries
    /// keep the bytes they had when the message was built by hand.
    #[test]
    fn attempt_stream_is_the_appended_message() {
        let a = Keyed::new(3, "anon");
        for attempt in [0u32, 1, 0x0102_0304] {
            let mut msg = b"ACME".to_vec();
            msg.extend_from_slice(&attempt.to_le_bytes());
            let x: u64 = a.rng_attempt("name", b"ACME", attempt).random();
            let y: u64 = a.rng("name", &msg).random();
            assert_eq!(x, y, "attempt {attempt}");
        }
    }

    /// The digest equals standard HMAC-SHA1 (as computed by Python's `hmac` module for the
    /// same key block and message), pinning the byte layout against a dependency update.
    #[test]
    fn digest_is_pinned() {
        let d = Keyed::new(42, "pin").digest("class", b"value");
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PINNED_HEX);
    }

    const PINNED_HEX: &str = "caf16b2ec6551c52aae853fab01afd40c8ce58a3";
}

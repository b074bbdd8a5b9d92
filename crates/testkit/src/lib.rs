//! natview-testkit (dev-only): property-test inputs shared by the tests of natview's file readers: one deterministic
//! proptest configuration, and damaged copies of a valid file (bytes flipped or overwritten,
//! little-endian words set to small or extreme values, the file cut short or extended), so
//! that each reader is shown it returns `Ok` or `Err` but never panics, hangs or allocates
//! what the file cannot hold.

#![forbid(unsafe_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

/// Cases per property: enough to reach every field of the small files under test, few
/// enough for CI.
const CASES: u32 = 256;

/// The configuration of every file-reader property: a fixed seed (the same cases on every
/// run and machine) and no failure files written into the source tree.
pub fn config() -> Config {
    Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(0x6e61_7476_6965_7721),
        failure_persistence: None,
        ..Config::default()
    }
}

/// One change to a file's bytes.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip the bits of `mask` at a position.
    Xor(Index, u8),
    /// Write a little-endian u32 at a 4-aligned position (counts, links, lengths).
    Word(Index, u32),
    /// Write a little-endian u64 at an 8-aligned position (sizes, offsets in headers).
    Long(Index, u64),
    /// Cut the file at a position.
    Truncate(Index),
    /// Append bytes.
    Extend(Vec<u8>),
}

/// Values that stress sizes and links: small ones (valid-looking, often just out of range),
/// powers of two and their neighbours, and the extremes.
fn word_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..80,
        1 => (0u32..64).prop_map(|s| 1u64 << s),
        1 => (1u32..64).prop_map(|s| (1u64 << s) - 1),
        1 => Just(u64::from(u32::MAX)),
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Xor(at, mask)),
        3 => (any::<Index>(), word_value()).prop_map(|(at, v)| Mutation::Word(at, v as u32)),
        2 => (any::<Index>(), word_value()).prop_map(|(at, v)| Mutation::Long(at, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
    ]
}

/// One to four mutations, applied in order.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..=4)
}

/// Arbitrary bytes, up to `max` of them.
pub fn arbitrary_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

/// `valid` with `mutations` applied.
pub fn apply(valid: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for mutation in mutations {
        let len = bytes.len();
        match mutation {
            Mutation::Xor(at, mask) if len > 0 => bytes[at.index(len)] ^= mask,
            Mutation::Word(at, value) if len >= 4 => {
                let at = at.index(len / 4) * 4;
                bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            Mutation::Long(at, value) if len >= 8 => {
                let at = at.index(len / 8) * 8;
                bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            Mutation::Truncate(at) if len > 0 => bytes.truncate(at.index(len)),
            Mutation::Extend(more) => bytes.extend_from_slice(more),
            _ => {}
        }
    }
    bytes
}

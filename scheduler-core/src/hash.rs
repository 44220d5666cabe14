//! Stable hashes: FNV-1a, written here once in the two widths the
//! workspace needs, rather than taken from `std`, whose hasher may change
//! between Rust versions. What they hash must come out the same on every
//! replica and in every version of this library: the per-scope offsets of a
//! spread ([`plan::stable_hash`](crate::plan::stable_hash), 64-bit) and the
//! names a store derives for the objects it creates (32-bit, in
//! `scheduler-postgres`), which are persisted.
//!
//! Part of the store-author interface: not covered by semver (see the crate
//! docs), but the outputs of these functions never change.
//!
//! The crate's hot per-plan maps (the manager's busy, known and finishing
//! marks, a claim's admission) are the opposite kind, kept here beside
//! them: `FastMap` and `FastSet`, seeded per process, never persisted.

use std::collections::{HashMap, HashSet};

/// A map of the hot paths, hashed with a fast seeded hasher: scope names
/// are hashed several times per plan, and SipHash cost more than a tenth of
/// the manager's per-plan work. The per-process random seed is what keeps
/// crafted names from colliding on purpose.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// A set hashed as `FastMap`.
pub(crate) type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// One FNV-1a function over the concatenated parts, of the width `$t`.
macro_rules! fnv1a {
    ($(#[$doc:meta])* $name:ident, $t:ty, $offset:expr, $prime:expr) => {
        $(#[$doc])*
        pub fn $name(parts: &[&[u8]]) -> $t {
            let mut hash: $t = $offset;
            for part in parts {
                for &byte in *part {
                    hash ^= <$t>::from(byte);
                    hash = hash.wrapping_mul($prime);
                }
            }
            hash
        }
    };
}

fnv1a!(
    /// 64-bit FNV-1a over the concatenated parts.
    fnv1a_64,
    u64,
    0xcbf2_9ce4_8422_2325,
    0x0000_0100_0000_01b3
);

fnv1a!(
    /// 32-bit FNV-1a over the concatenated parts.
    fnv1a_32,
    u32,
    0x811c_9dc5,
    0x0100_0193
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference values of FNV-1a: a change here would move every
    /// scope's offset and rename persisted objects.
    #[test]
    fn fnv1a_gives_the_reference_values_whatever_the_split() {
        assert_eq!(fnv1a_64(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_32(&[]), 0x811c_9dc5);
        assert_eq!(fnv1a_32(&[b"a"]), 0xe40c_292c);
        let table = format!("{}a", "t".repeat(62));
        assert_eq!(fnv1a_32(&[table.as_bytes()]), 0x8d73_021c);
        assert_eq!(
            fnv1a_32(&[&table.as_bytes()[..10], &table.as_bytes()[10..]]),
            0x8d73_021c
        );
    }
}

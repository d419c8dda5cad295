//! Equality of the short ids and names records carry (services, probe
//! sources, resources, metric and counter names), looked up several times
//! per record.

use std::collections::BTreeMap;

/// Whether `a` and `b` are the same text. Up to 16 bytes it compares the
/// first and last bytes (which, overlapping, cover every byte of two texts
/// of one length) in registers: `==` calls `memcmp`, whose call and setup
/// cost more than the compare: 4.3–4.6 % of a replay's time (`perf`, the
/// generated week) for about five compares a record.
#[inline(always)]
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0 => true,
        1..=3 => ends::<1>(a) == ends::<1>(b) && a.get(1) == b.get(1),
        4..=8 => ends::<4>(a) == ends::<4>(b),
        9..=16 => ends::<8>(a) == ends::<8>(b),
        _ => a == b,
    }
}

/// The value of `key` in `map`. A map of a few keys (a service's counter
/// names, a counter's sources) is scanned with [`same`]: its search called
/// `memcmp` at every key it passed.
#[inline(always)]
pub fn get_mut<'m, V>(map: &'m mut BTreeMap<String, V>, key: &str) -> Option<&'m mut V> {
    if map.len() <= FEW {
        map.iter_mut().find_map(|(k, v)| same(k, key).then_some(v))
    } else {
        map.get_mut(key)
    }
}

/// The most entries a lookup scans with [`same`] instead of searching.
pub const FEW: usize = 8;

/// The first and the last `N` bytes of `s` (`None` below `N` bytes).
#[inline(always)]
fn ends<const N: usize>(s: &[u8]) -> Option<(&[u8; N], &[u8; N])> {
    Some((s.first_chunk()?, s.last_chunk()?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn get_mut_finds_a_key_in_a_few_or_many() {
        for n in [0, 2, super::FEW, super::FEW + 1, 40] {
            let mut map: BTreeMap<String, usize> = (0..n).map(|i| (format!("k{i}"), i)).collect();
            for i in 0..n {
                assert_eq!(super::get_mut(&mut map, &format!("k{i}")).copied(), Some(i));
            }
            assert_eq!(super::get_mut(&mut map, "k"), None);
            assert_eq!(super::get_mut(&mut map, &format!("k{n}")), None);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// As `==`, on texts of every length up to past 16 bytes, most of
        /// them of one length and differing in one byte.
        #[test]
        fn same_is_equality(
            a in "[ab]{0,20}",
            at in any::<prop::sample::Index>(),
            flip in any::<bool>(),
            other in "[a-zé]{0,20}",
        ) {
            let mut b: Vec<char> = a.chars().collect();
            if flip && !b.is_empty() {
                let i = at.index(b.len());
                b[i] = if b[i] == 'a' { 'b' } else { 'a' };
            }
            let b: String = b.into_iter().collect();
            prop_assert_eq!(super::same(&a, &b), a == b, "{:?} {:?}", a, b);
            prop_assert_eq!(super::same(&a, &other), a == other, "{:?} {:?}", a, other);
        }
    }
}

//! The decoder's fast path: one pass over a flat JSON object whose members are
//! plain strings (no escapes), numbers or `null`, the shape every contract
//! record has. Anything else (an escape, a nested value, `true`, a number
//! serde_json reads another way, text after the object, …) makes [`scan`]
//! answer `None`, and the decoder reads the record with serde instead, which
//! also words every error. The two paths give the same rows: a property test in
//! `decode.rs` compares them on random records.

/// A member's value, as the fast path reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value<'a> {
    /// A string without escapes.
    Str(&'a str),
    /// An integer that fits an `i64` (at most 18 digits).
    Int(i64),
    /// A number with a fraction or exponent, as serde_json reads it.
    Float(f64),
    /// `null`.
    Null,
}

/// The member names a record type reads. [`scan`] tells which one a member
/// is by comparing the 16 bytes at its `"` with each candidate `"name":` at
/// once (the candidates are the names whose first three bytes after the `"`
/// hash as the member's do: mostly one), instead of finding the name's
/// closing quote and then comparing strings; a member it cannot tell that
/// way (a name it does not know, whitespace before the `:`, the object's
/// last 16 bytes) is read the long way.
pub(super) struct Names {
    names: &'static [&'static str],
    /// Per name: `"name":` as the low bytes of a little-endian `u128`, the
    /// mask of those bytes, and their length.
    patterns: [(u128, u128, usize); 32],
    /// Per [`head_hash`] of the three bytes after the `"`, the names whose
    /// own hash that is, one bit each (by first letter alone, `s` had four
    /// names, three of them in every probe).
    by_head: [u32; 256],
}

/// A hash of the three bytes after a member name's `"`, the low bytes of
/// `head` (little-endian): for any name, its first letters, or its closing
/// `":`, so they are the name's own.
const fn head_hash(head: u32) -> usize {
    ((head & 0xFF_FFFF).wrapping_mul(0x9E37_79B1) >> 24) as usize
}

impl Names {
    /// The table for `names` (at most 32, each 1 to 13 plain ASCII bytes, so
    /// that `"name":` fits 16 bytes). A member's index is its place in `names`.
    pub(super) const fn new(names: &'static [&'static str]) -> Names {
        assert!(names.len() <= 32);
        let mut patterns = [(0, 0, 0); 32];
        let mut by_head = [0; 256];
        let mut k = 0;
        while k < names.len() {
            let name = names[k].as_bytes();
            assert!(!name.is_empty() && name.len() <= 13);
            let mut bytes = [0; 16];
            bytes[0] = b'"';
            let mut j = 0;
            while j < name.len() {
                assert!(name[j] > b' ' && name[j] < 0x7f && name[j] != b'"' && name[j] != b'\\');
                bytes[j + 1] = name[j];
                j += 1;
            }
            bytes[name.len() + 1] = b'"';
            bytes[name.len() + 2] = b':';
            let len = name.len() + 3;
            let mask = if len == 16 {
                u128::MAX
            } else {
                (1 << (8 * len)) - 1
            };
            patterns[k] = (u128::from_le_bytes(bytes), mask, len);
            let head = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            by_head[head_hash(head)] |= 1 << k;
            k += 1;
        }
        Names {
            names,
            patterns,
            by_head,
        }
    }

    /// The index of `name`, `None` for a name not in the table.
    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }
}

/// Calls `member(index, value)` for each member of the object `text`, in
/// order, with the index of its name in `names` (`None` for another name);
/// `None` when `text` is not a plain flat object or `member` refuses one.
pub(super) fn scan<'a>(
    text: &'a str,
    names: &Names,
    mut member: impl FnMut(Option<usize>, Value<'a>) -> Option<()>,
) -> Option<()> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return end(b, i + 1);
    }
    loop {
        let (name, next) = name(text, i, names)?;
        i = skip_ws(b, next);
        let (value, next) = value(text, i)?;
        member(name, value)?;
        i = skip_ws(b, next);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return end(b, i + 1),
            _ => return None,
        }
    }
}

/// The member name starting at `text[i]` (a `"`), as its index in `names`,
/// and the index after its `:`.
#[inline(always)]
fn name(text: &str, i: usize, names: &Names) -> Option<(Option<usize>, usize)> {
    let b = text.as_bytes();
    if let Some(word) = b.get(i..i + 16) {
        let w = u128::from_le_bytes(word.try_into().ok()?);
        let mut candidates = names.by_head[head_hash((w >> 8) as u32)];
        while candidates != 0 {
            let k = candidates.trailing_zeros() as usize;
            let (pattern, mask, len) = names.patterns[k];
            if w & mask == pattern {
                return Some((Some(k), i + len));
            }
            candidates &= candidates - 1;
        }
    }
    let (name, next) = string(text, i)?;
    let i = skip_ws(b, next);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some((names.index(name), i + 1))
}

/// Only whitespace may follow the object.
#[inline(always)]
fn end(b: &[u8], i: usize) -> Option<()> {
    (skip_ws(b, i) == b.len()).then_some(())
}

#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    // Records are mostly compact JSON, with no whitespace between tokens:
    // one comparison answers that case (the loop's four cost 12 % of the
    // scanner's instructions).
    if b.get(i).is_some_and(|&c| c > b' ') {
        return i;
    }
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The string starting at `text[i]` (a `"`) and the index after it; `None`
/// for an escape or a control character.
#[inline(always)]
fn string(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let end = start + special(&b[start..])?;
    if b[end] != b'"' {
        return None;
    }
    // `"` is ASCII, so `start..end` lies on character boundaries.
    Some((text.get(start..end)?, end + 1))
}

/// The index of the first `"`, `\\` or control character in `b`. Strings
/// here are short ids and names, too short for a SIMD search's setup, so eight
/// bytes are tested at a time in a `u64` ("Bit Twiddling Hacks": a byte
/// equal to `c` is a zero byte of `w ^ c`; `hasless`). Borrows can flag bytes
/// above a true match, never below it, so the lowest flag is exact.
#[inline(always)]
fn special(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let w = u64::from_le_bytes(word.try_into().ok()?);
        let flags = below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
            | below(w, 0x20);
        if flags != 0 {
            return Some(at + flags.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = words.remainder();
    Some(
        at + rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?,
    )
}

#[inline(always)]
fn value(text: &str, i: usize) -> Option<(Value<'_>, usize)> {
    let b = text.as_bytes();
    match b.get(i)? {
        b'"' => string(text, i).map(|(s, next)| (Value::Str(s), next)),
        b'n' => text[i..]
            .starts_with("null")
            .then_some((Value::Null, i + 4)),
        b'-' | b'0'..=b'9' => number(text, i),
        _ => None,
    }
}

/// A number token as serde_json reads it: an integer of at most 18 digits
/// (no leading zero, not `-0`, which serde_json reads as a float), or a
/// fraction/exponent. A float whose digits fit an `f64` exactly and whose
/// power of ten is exact (|e| ≤ 22) is one correctly rounded operation, the
/// value serde_json computes whether or not its `float_roundtrip` feature is
/// on; any other is parsed by serde_json itself, so the `f64` is the same.
// Inlined into `value`: as a call, its frame cost about 2.4 % of the
// decoder's instructions (callgrind, the generated week).
#[inline(always)]
fn number(text: &str, i: usize) -> Option<(Value<'_>, usize)> {
    let b = text.as_bytes();
    let negative = b[i] == b'-';
    let start = i + usize::from(negative);
    let (magnitude, n_digits) = digits(&b[start..]);
    let j = start + n_digits;
    if n_digits == 0 || (b[start] == b'0' && (n_digits > 1 || negative)) {
        return None;
    }
    if !matches!(b.get(j), Some(b'.' | b'e' | b'E')) {
        if n_digits > 18 {
            return None;
        }
        let int = if negative { -magnitude } else { magnitude };
        return Some((Value::Int(int), j));
    }
    // `magnitude` wraps past 18 digits; `exact_float` refuses more than 15.
    if let Some((f, len)) = exact_float(magnitude as u64, n_digits, &b[j..])
        && !b.get(j + len).is_some_and(|&c| is_number_byte(c))
    {
        return Some((Value::Float(if negative { -f } else { f }), j + len));
    }
    judged_by_serde(text, i, j)
}

/// The number token starting at `text[i]`, its digits before `text[j]` read,
/// as serde_json reads it. Rare (a float that is not one exact operation), so
/// out of line: inlined, its frame and registers cost every number.
#[cold]
#[inline(never)]
fn judged_by_serde(text: &str, i: usize, j: usize) -> Option<(Value<'_>, usize)> {
    let b = text.as_bytes();
    // The token as far as it looks like a number.
    let end = j
        + (b[j..].iter())
            .position(|&c| !is_number_byte(c))
            .unwrap_or(b.len() - j);
    Some((Value::Float(serde_json::from_str(&text[i..end]).ok()?), end))
}

fn is_number_byte(c: u8) -> bool {
    c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')
}

/// Powers of ten that fit an `i64`.
const POW10_I64: [i64; 19] = {
    let mut p = [1i64; 19];
    let mut k = 1;
    while k < 19 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

/// The run of ASCII digits at the start of `b`: its value (wrapping past 18
/// digits) and its length. Eight bytes at a time while eight are left (epoch
/// milliseconds have 13 digits), then one at a time.
fn digits(b: &[u8]) -> (i64, usize) {
    let (mut value, mut n) = (0i64, 0);
    while let Some(word) = b.get(n..n + 8) {
        let (v, k) = leading_digits(word);
        value = value.wrapping_mul(POW10_I64[k]).wrapping_add(v);
        n += k;
        if k < 8 {
            return (value, n);
        }
    }
    while let Some(&c) = b.get(n).filter(|c| c.is_ascii_digit()) {
        value = value.wrapping_mul(10).wrapping_add(i64::from(c - b'0'));
        n += 1;
    }
    (value, n)
}

/// The digits that start `word` (eight bytes): their value and how many. A
/// byte is a digit when its high nibble is 3, and still 3 after adding 6 to
/// its low seven bits (no carry reaches the next byte); the digits are moved
/// to the top of the word behind `'0'`s and summed as eight (simdjson's
/// `parse_eight_digits_unrolled`: pairs, then fours, then eights, in three
/// multiplications).
fn leading_digits(word: &[u8]) -> (i64, usize) {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    let Ok(bytes) = <[u8; 8]>::try_from(word) else {
        return (0, 0);
    };
    let w = u64::from_le_bytes(bytes);
    let (high, zeros) = (ONES * 0xF0, ONES * u64::from(b'0'));
    let plus_six = ((w & (ONES * 0x7F)) + ONES * 6) & high;
    let not_digit = ((w & high) ^ zeros) | (plus_six ^ zeros);
    let k = (not_digit.trailing_zeros() / 8) as usize;
    if k == 0 {
        return (0, 0);
    }
    // Little-endian: the first byte is the most significant digit.
    let shift = 8 * (8 - k as u32);
    let w = ((w << shift) | (zeros & ((1u64 << shift) - 1))) - zeros;
    let pairs = w.wrapping_mul(10).wrapping_add(w >> 8);
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let eights = ((pairs & MASK).wrapping_mul(MUL1))
        .wrapping_add(((pairs >> 16) & MASK).wrapping_mul(MUL2))
        >> 32;
    (i64::from(eights as u32), k)
}

/// The integer part (`int`, of `int_digits` digits) and then what follows it
/// in `rest` (`.digits`, `e±digits`, or both) as one exact operation, when
/// there is one: the value and the length read from `rest`.
fn exact_float(int: u64, int_digits: usize, rest: &[u8]) -> Option<(f64, usize)> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (mut significand, mut fraction_digits, mut k) = (int, 0, 0);
    if rest.first() == Some(&b'.') {
        let (fraction, n) = digits(&rest[1..]);
        fraction_digits = n;
        k = 1 + n;
        if n == 0 || int_digits + n > 15 {
            return None;
        }
        significand = significand * POW10_I64[n] as u64 + fraction as u64;
    }
    // At most 15 digits: the significand is below 2^53, so exact as an f64.
    if int_digits + fraction_digits > 15 {
        return None;
    }
    let mut e = 0i32;
    if matches!(rest.get(k), Some(b'e' | b'E')) {
        k += 1;
        let negative = rest.get(k) == Some(&b'-');
        k += usize::from(matches!(rest.get(k), Some(b'+' | b'-')));
        let (value, n) = digits(&rest[k..]);
        if n == 0 || n > 3 {
            return None;
        }
        k += n;
        e = if negative { -value } else { value } as i32;
    }
    let e = e - fraction_digits as i32;
    let pow = *POW10.get(e.unsigned_abs() as usize)?;
    let f = if e >= 0 {
        significand as f64 * pow
    } else {
        significand as f64 / pow
    };
    Some((f, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decimal tokens of every shape: 1 to 20 digits, the point anywhere,
    /// exponents in and out of the exact range, every exponent spelling.
    fn decimal() -> impl Strategy<Value = String> {
        let exponent =
            prop::option::of((-40i32..40, prop::sample::select(vec!["e", "E", "e+", "E-"])));
        (1u32..21, any::<u64>(), 0usize..21, exponent, any::<bool>()).prop_map(
            |(len, m, point, exponent, negative)| {
                let digits = format!("{m:020}")[20 - len as usize..]
                    .trim_start_matches('0')
                    .to_owned();
                let digits = if digits.is_empty() {
                    "0".to_owned()
                } else {
                    digits
                };
                let split = digits.len() - point % digits.len();
                let (int, frac) = digits.split_at(split.max(1));
                let mut token = format!("{}{int}", if negative { "-" } else { "" });
                if !frac.is_empty() || exponent.is_none() {
                    token = format!("{token}.{}", if frac.is_empty() { "0" } else { frac });
                }
                if let Some((e, spelling)) = exponent {
                    let e = if spelling.ends_with('-') {
                        -e.abs()
                    } else {
                        e.abs()
                    };
                    token = format!(
                        "{token}{}{}",
                        &spelling[..1],
                        if spelling.len() > 1 && e >= 0 {
                            format!("+{e}")
                        } else {
                            e.to_string()
                        }
                    );
                }
                token
            },
        )
    }

    /// The digits that start `b`, summed one at a time (wrapping), and how many.
    fn one_at_a_time(b: &[u8]) -> (i64, usize) {
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let value = (b[..n].iter()).fold(0i64, |v, c| {
            v.wrapping_mul(10).wrapping_add(i64::from(c - b'0'))
        });
        (value, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn special_finds_the_first_quote_backslash_or_control(b in prop::collection::vec(prop_oneof![
            8 => 0x20u8..0x7f, 1 => 0u8..0x20, 1 => 0x7fu8..=0xff, 1 => Just(b'"'), 1 => Just(b'\\'),
        ], 0..40)) {
            let plain = b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(special(&b), plain);
        }

        #[test]
        fn a_word_of_digits_reads_as_one_digit_at_a_time(b in prop::collection::vec(prop_oneof![
            8 => b'0'..=b'9', 1 => any::<u8>(),
        ], 8)) {
            prop_assert_eq!(leading_digits(&b), one_at_a_time(&b));
        }

        #[test]
        fn a_run_of_digits_reads_as_one_digit_at_a_time(b in prop::collection::vec(prop_oneof![
            8 => b'0'..=b'9', 1 => any::<u8>(),
        ], 0..40)) {
            let (value, n) = one_at_a_time(&b);
            let read = digits(&b);
            prop_assert_eq!(read.1, n);
            if n <= 18 {
                prop_assert_eq!(read.0, value);
            }
        }

        #[test]
        fn number_like_tokens_are_read_as_serde_json_reads_them(token in "-?[0-9][0-9.eE+-]{0,14}") {
            let serde: Option<f64> = serde_json::from_str(&token).ok();
            match number(&token, 0) {
                Some((Value::Float(f), end)) => {
                    prop_assert_eq!(end, token.len(), "{}", token);
                    prop_assert_eq!(Some(f.to_bits()), serde.map(f64::to_bits), "{}", token);
                }
                Some((Value::Int(i), end)) if end == token.len() => {
                    prop_assert_eq!(Some(i as f64), serde, "{}", token);
                }
                // An integer followed by `+` or `-`: the scanner refuses what follows.
                Some((Value::Int(_), end)) => prop_assert!(matches!(token.as_bytes()[end], b'+' | b'-')),
                Some(v) => prop_assert!(false, "{}: {:?}", token, v),
                None => {}
            }
        }

        #[test]
        fn integers_are_the_values_serde_json_reads(token in "-?[0-9]{1,20}") {
            let serde: Option<i64> = serde_json::from_str(&token).ok();
            match number(&token, 0) {
                Some((Value::Int(i), end)) => {
                    prop_assert_eq!(end, token.len());
                    prop_assert_eq!(Some(i), serde, "{}", token);
                }
                None => {
                    // Left to serde: a leading zero, `-0`, more than 18 digits.
                    let digits = token.trim_start_matches('-');
                    let refused = digits.len() > 18
                        || (digits.starts_with('0') && (digits.len() > 1 || token.starts_with('-')));
                    prop_assert!(refused, "{}", token);
                }
                Some(v) => prop_assert!(false, "{}: {:?}", token, v),
            }
        }

        #[test]
        fn floats_are_the_bits_serde_json_reads(token in decimal()) {
            let serde: Option<f64> = serde_json::from_str(&token).ok();
            let fast = match number(&token, 0) {
                Some((Value::Float(f), end)) if end == token.len() => Some(f),
                Some((v, end)) => panic!("{token}: {v:?} up to {end}"),
                None => None,
            };
            // `-0.x` is left to serde entirely (the `None` above).
            if let Some(fast) = fast {
                prop_assert_eq!(Some(fast.to_bits()), serde.map(f64::to_bits), "{}", token);
            }
        }
    }

    const NAMES: Names = Names::new(&["a", "b", "c", "d", "event_id", "exclusion_id"]);

    fn members(text: &str) -> Option<Vec<(&str, Value<'_>)>> {
        let mut out = Vec::new();
        scan(text, &NAMES, |k, v| {
            out.push((k.map_or("?", |k| NAMES.names[k]), v));
            Some(())
        })?;
        Some(out)
    }

    #[test]
    fn names_are_told_apart_by_their_bytes_or_read_the_long_way() {
        let long = r#"{"event_id":1,"event_idx":2,"exclusion_id":3,"e":4,"event_id" :5,"é":6}"#;
        let padded = format!("{long:<80}");
        for text in [long, padded.as_str()] {
            let got = members(text).expect("a flat object");
            let names: Vec<&str> = got.iter().map(|(k, _)| *k).collect();
            assert_eq!(
                names,
                ["event_id", "?", "exclusion_id", "?", "event_id", "?"],
                "{text}"
            );
        }
        // The last members, under 16 bytes from the end, are read the long way.
        assert_eq!(
            members(r#"{"a":1,"b":2}"#),
            Some(vec![("a", Value::Int(1)), ("b", Value::Int(2))])
        );
    }

    #[test]
    fn plain_objects_are_read_and_the_rest_left_to_serde() {
        let got = members(r#" { "a" : "x\u00e9" , "b":-12,"c":1.5e2,"d":null } "#);
        assert_eq!(got, None, "an escape is left to serde");
        let got = members(r#" { "a" : "xé" , "b":-12,"c":1.5e2,"d":null } "#);
        assert_eq!(
            got,
            Some(vec![
                ("a", Value::Str("xé")),
                ("b", Value::Int(-12)),
                ("c", Value::Float(150.0)),
                ("d", Value::Null)
            ])
        );
        assert_eq!(members("{}"), Some(vec![]));
        for text in [
            "",
            "[]",
            r#"{"a":1}x"#,
            r#"{"a":1,}"#,
            r#"{"a":true}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":01}"#,
            r#"{"a":-0}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":1.}"#,
            r#"{"a":"x
y"}"#,
            r#"{"a" 1}"#,
            r#"{"a":nul}"#,
        ] {
            assert_eq!(members(text), None, "{text}");
        }
    }
}

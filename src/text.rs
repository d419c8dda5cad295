//! Words in messages people read.

/// `n` and `noun`, plural unless `n` is 1: "1 day", "3 days", "0 files".
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_the_rest_plural() {
        assert_eq!(super::count(1u32, "day"), "1 day");
        assert_eq!(super::count(0u32, "file"), "0 files");
        assert_eq!(super::count(12u64, "incident"), "12 incidents");
    }
}

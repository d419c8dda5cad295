//! Keyed signatures (HMAC-SHA256), shared by webhook delivery and checkpoints.
//! A leaf: imports nothing of slaflow.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Hex HMAC-SHA256 of the concatenated `parts` under `secret`.
pub fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    // HMAC accepts keys of any length, so this never returns early.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return String::new();
    };
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `tag` is the hex HMAC of `parts`, compared in constant time.
pub fn hmac_matches(secret: &[u8], parts: &[&[u8]], tag: &str) -> bool {
    bool::from(hmac_hex(secret, parts).as_bytes().ct_eq(tag.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let tag = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            hmac_hex(b"Jefe", &[b"what do ya ", b"want for nothing?"]),
            tag
        );
        assert!(hmac_matches(
            b"Jefe",
            &[b"what do ya want for nothing?"],
            tag
        ));
        assert!(!hmac_matches(
            b"Jeff",
            &[b"what do ya want for nothing?"],
            tag
        ));
    }
}

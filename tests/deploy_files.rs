//! The configs shipped in `deploy/` stay valid.

use std::path::Path;

#[test]
fn deploy_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let c = slaflow::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !c.services.is_empty() && c.kafka.is_some() && c.api.is_some(),
                "{}",
                path.display()
            );
            n += 1;
        }
    }
    assert_eq!(n, 2, "slaflow.toml and slaflow.compose.toml");
}

/// A shipped config must not carry a token anyone can guess (copied configs
/// keep their tokens).
#[test]
fn deploy_configs_ship_no_guessable_tokens() {
    use sha2::{Digest, Sha256};
    let words = [
        "test", "acme", "globex", "ingest", "admin", "token", "secret", "password", "slaflow",
        "changeme", "",
    ];
    let guessable: Vec<String> = words
        .iter()
        .map(|w| hex::encode(Sha256::digest(w.as_bytes())))
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    for entry in std::fs::read_dir(&dir).expect("deploy dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for (word, hash) in words.iter().zip(&guessable) {
            assert!(
                !text.contains(hash.as_str()),
                "{} ships the token {word:?}",
                path.display()
            );
        }
        if path.extension().is_some_and(|e| e == "toml") {
            let c = slaflow::config::Config::load(&path).expect("config");
            assert!(
                c.api.is_some_and(|a| a.tokens.is_empty()),
                "{}",
                path.display()
            );
        }
    }
}

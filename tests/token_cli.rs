//! `slaflow token` as an operator uses it: a fresh random token each time and
//! `[[api.tokens]]` lines that, pasted into a config, authenticate that token
//! with the scope asked for.

mod common;

use sha2::{Digest, Sha256};

fn token(args: &[&str]) -> (String, String) {
    let out = common::slaflow()
        .arg("token")
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (first, rest) = text.split_once('\n').expect("token line");
    (first.to_owned(), rest.to_owned())
}

#[test]
fn tokens_are_fresh_and_their_config_lines_load() {
    let base = "[[customers]]\nid = \"acme\"\n[[customers]]\nid = \"globex\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n[api]\n";
    for (args, customer, ingest) in [
        (vec![], None, false),
        (vec!["--customer", "acme"], Some("acme"), false),
        (
            vec!["--scope", "ingest", "--customers", "acme,globex"],
            None,
            true,
        ),
    ] {
        let (t1, lines) = token(&args);
        let (t2, _) = token(&args);
        assert_ne!(t1, t2, "a fresh token every time");
        let hex = t1.rsplit('_').next().unwrap_or_default();
        assert_eq!(hex.len(), 64, "{t1}");
        assert!(
            !lines.contains(&t1),
            "the token itself must not go into the config"
        );
        let config = slaflow::config::Config::parse(
            &format!("{base}{lines}"),
            std::path::Path::new("t.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}\n{lines}"));
        let entry = &config.api.as_ref().expect("api").tokens[0];
        assert_eq!(*entry.sha256, hex::encode(Sha256::digest(t1.as_bytes())));
        assert_eq!(entry.customer.as_deref(), customer);
        assert_eq!(entry.scope.is_some(), ingest);
        if ingest {
            let list = entry.customers.clone();
            assert_eq!(list, Some(vec!["acme".to_owned(), "globex".to_owned()]));
        }
    }
    // Contradictory options are refused.
    let out = common::slaflow()
        .args(["token", "--customer", "acme", "--scope", "ingest"])
        .output()
        .expect("run");
    assert!(!out.status.success());
}

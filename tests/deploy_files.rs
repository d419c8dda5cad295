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

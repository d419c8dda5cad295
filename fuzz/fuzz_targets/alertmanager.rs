//! The Alertmanager webhook translator: any body gives events, rejections or a
//! whole-body rejection, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = slaflow::ingest::alertmanager::translate(slaflow_fuzz_config(), data);
});

fn slaflow_fuzz_config() -> &'static slaflow::config::Config {
    static CONFIG: std::sync::OnceLock<slaflow::config::Config> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| {
        slaflow::config::Config::parse(
            "[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n",
            std::path::Path::new("fuzz.toml"),
        )
        .expect("config")
    })
}

//! Checkpoint decoding and its checks (single files, and chains of a full file
//! and deltas): any bytes are a checkpoint that a run
//! under the config could have produced, or an error, never a panic. Inputs that
//! decode are restored into a core, which must not panic either.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use slaflow::config::Config;
use slaflow::pipeline::Pipeline;
use slaflow::state::Core;

fn config() -> &'static Arc<Config> {
    static CONFIG: OnceLock<Arc<Config>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Arc::new(
            Config::parse(
                "[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n[[slas]]\nid = \"gold\"\ncustomer = \"acme\"\nkinds = [\"incident\"]\npause_statuses = [\"on_hold\"]\n[slas.targets.P1]\nresponse = \"15m\"\n",
                std::path::Path::new("fuzz.toml"),
            )
            .expect("config"),
        )
    })
}

/// An input starting `CHAIN` is a chain of files (a full file and its
/// deltas): per file its length (u32, little-endian) and its bytes.
fn chain(data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut rest = data.strip_prefix(b"CHAIN")?;
    let mut files = Vec::new();
    while rest.len() >= 4 && files.len() < 16 {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let (file, tail) = tail.split_at(len.min(tail.len()));
        files.push(file);
        rest = tail;
    }
    Some(files)
}

fuzz_target!(
    init: {
        // libfuzzer-sys aborts on every panic, even one caught: checkpoint decoding
        // deliberately catches arrow-ipc's panics on malformed flatbuffers. A panic
        // that escapes still aborts (libfuzzer-sys's own catch_unwind), so what is
        // found here is what would reach a live process.
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    },
    |data: &[u8]| {
    let config = config();
    let decoded = match chain(data) {
        Some(files) => slaflow::checkpoint::decode_chain(&files, config),
        None => slaflow::checkpoint::decode(data, config),
    };
    if let Ok(cp) = decoded {
        let mut core = Core::new(Pipeline::new(config.clone(), ["m".into(), "t".into()]));
        core.restore(cp, 0);
        let _ = slaflow::state::Snapshot::of(&core).tables();
    }
});

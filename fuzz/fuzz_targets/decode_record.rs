//! The record decoder of both topics, and the `ingest` validation built on it:
//! any bytes give rows or `malformed` dead letters, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slaflow::event::{Decoder, RawRecord, Topic};

fuzz_target!(|data: &[u8]| {
    // Several records per input: lines, as in replay files.
    let records: Vec<RawRecord> = data
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, payload)| RawRecord {
            partition: 0,
            offset: i as i64,
            payload,
        })
        .collect();
    for topic in Topic::ALL {
        let chunk = Decoder::new(topic, "fuzz").decode(0, &records);
        assert_eq!(chunk.len(), records.len());
    }
});

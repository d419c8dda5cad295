//! Event ids are kept as 64-bit hashes (issue 14): on a generated week, every
//! resent record is still a `duplicate` and no other record is.

use std::path::Path;
use std::sync::Arc;

use slaflow::config::Config;
use slaflow::event::deadletter::Reason;
use slaflow::generate::{Generator, roughen, run_through, scenario_config};

/// 2026-11-02T00:00:00Z, a Monday.
const START: i64 = 1_793_577_600_000;
const DAY: i64 = 86_400_000;

#[test]
fn hashed_ids_flag_every_resend_of_a_generated_week_and_nothing_else() {
    let config = Arc::new(Config::parse(&scenario_config(), Path::new("g.toml")).expect("config"));
    let mut generator = Generator::new(11, START, 1.0);
    let minutes = (0..7 * 1440).flat_map(|_| generator.minute()).collect();
    // The rates `slaflow generate` uses: a resend is the same line twice in a row.
    let events = roughen(minutes, 11, 20_000, 0.005, 0.001, 0.0005);
    let mut resent: Vec<&str> = (events.windows(2))
        .filter(|w| w[0].line == w[1].line)
        .map(|w| w[1].line.as_str())
        .collect();
    let (_, out) = run_through(&config, &events, START + 8 * DAY).expect("decoded rows");
    let mut flagged: Vec<&str> = (out.dead_letters.iter())
        .filter(|d| d.reason == Reason::Duplicate)
        .map(|d| d.raw.as_str())
        .collect();
    resent.sort_unstable();
    flagged.sort_unstable();
    assert!(resent.len() > 1_000, "{} resends", resent.len());
    assert_eq!(flagged.len(), resent.len());
    assert!(flagged == resent, "the duplicates are not the resends");
}

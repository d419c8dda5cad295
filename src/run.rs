//! `slaflow run`: the live driver.

use std::sync::Arc;

use crate::config::Config;

/// Runs the live pipeline until SIGTERM/SIGINT.
pub fn run(_config: Arc<Config>) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}

//! `[report]`: what the customer report (contract section 12) points out.

use std::num::NonZeroU32;

use serde::Deserialize;

/// `[report]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Outage incidents in a period that make a service a candidate for problem
    /// management (ISO/IEC 20000-1 8.6.3).
    pub problem_after: NonZeroU32,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            problem_after: NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN),
        }
    }
}

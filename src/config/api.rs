//! `[api]`: listen address, tokens, query limits.

use std::num::NonZeroU64;

use serde::Deserialize;

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: String,
    /// Bearer tokens (SHA-256 hex of the token).
    pub tokens: Vec<TokenConfig>,
    /// Memory all running `POST /v1/query` statements may hold together; a
    /// query that needs more is refused with 400.
    pub query_memory: bytesize::ByteSize,
    /// Most input records one `GET /v1/evidence` reads back from Kafka (both
    /// topics together); more are refused with 400: bounds the memory and
    /// time one live pack takes.
    pub evidence_max_records: NonZeroU64,
}

/// Default `api.evidence_max_records`.
pub const EVIDENCE_MAX_RECORDS: NonZeroU64 = NonZeroU64::new(5_000_000).expect("nonzero");

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8080".into(),
            tokens: Vec::new(),
            query_memory: bytesize::ByteSize::mib(256),
            evidence_max_records: EVIDENCE_MAX_RECORDS,
        }
    }
}

/// One `[[api.tokens]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Lower-case hex SHA-256 of the bearer token.
    pub sha256: String,
    /// Restricts the token to one customer; absent = admin.
    pub customer: Option<String>,
    /// `"ingest"`: the token may only post to `/v1/ingest/*` (for Alertmanager,
    /// ticket tools, collectors).
    #[serde(default)]
    pub scope: Option<TokenScope>,
    /// With `scope = "ingest"`: the customers whose services and tickets the
    /// token may write (absent = all).
    #[serde(default)]
    pub customers: Option<Vec<String>>,
}

/// What a token is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Only the ingest endpoints.
    Ingest,
}

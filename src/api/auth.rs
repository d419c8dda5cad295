//! Bearer-token authentication. Tokens are configured as SHA-256 hex digests and
//! compared in constant time; a customer token sees only its customer.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::state::Shared;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Sees everything, may write.
    Admin,
    /// Sees only this customer.
    Customer(String),
    /// May only post to the ingest endpoints; `Some` limits it to the services and
    /// tickets of these customers.
    Ingest(Option<Vec<String>>),
}

impl Principal {
    /// 403 unless this principal may see `customer`.
    pub fn check_customer(&self, customer: &str) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Customer(c) if c == customer => Ok(()),
            Principal::Customer(_) | Principal::Ingest(_) => Err(ApiError::forbidden(format!(
                "this token may not see customer {customer:?}"
            ))),
        }
    }

    /// 403 unless admin.
    pub fn check_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Customer(_) | Principal::Ingest(_) => {
                Err(ApiError::forbidden("this operation needs an admin token"))
            }
        }
    }

    /// 403 unless admin or an ingest token.
    pub fn check_ingest(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin | Principal::Ingest(_) => Ok(()),
            Principal::Customer(_) => {
                Err(ApiError::forbidden("ingest needs an admin or ingest token"))
            }
        }
    }

    /// Whether this principal may see `customer`.
    pub fn sees(&self, customer: &str) -> bool {
        self.check_customer(customer).is_ok()
    }

    /// Whether this principal may write events of `customer`'s services and tickets.
    pub fn writes_for(&self, customer: &str) -> bool {
        match self {
            Principal::Admin | Principal::Ingest(None) => true,
            Principal::Ingest(Some(list)) => list.iter().any(|c| c == customer),
            Principal::Customer(_) => false,
        }
    }
}

/// A fresh bearer token: 32 bytes from the OS CSPRNG, hex, after `prefix_`.
pub fn fresh_token(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}_{}", hex::encode(bytes)))
}

/// The `[[api.tokens]]` entry for `token`: only its SHA-256 goes into the config.
/// `customer` limits it to one customer's reports; `ingest` makes it an ingest
/// token, optionally limited to `customers`.
pub fn token_entry(
    token: &str,
    customer: Option<&str>,
    ingest: bool,
    customers: &[String],
) -> String {
    let mut entry = format!(
        "[[api.tokens]]\nsha256 = \"{}\"\n",
        hex::encode(Sha256::digest(token.as_bytes()))
    );
    if let Some(c) = customer {
        entry.push_str(&format!("customer = {}\n", toml_string(c)));
    }
    if ingest {
        entry.push_str("scope = \"ingest\"\n");
        if !customers.is_empty() {
            let list: Vec<String> = customers.iter().map(|c| toml_string(c)).collect();
            entry.push_str(&format!("customers = [{}]\n", list.join(", ")));
        }
    }
    entry
}

/// A TOML basic string: JSON's string escapes are valid TOML.
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Finds the principal for a presented token.
pub fn authenticate(shared: &Shared, token: &str) -> Option<Principal> {
    let digest = Sha256::digest(token.as_bytes());
    let mut found = None;
    for t in shared.config.api.iter().flat_map(|a| a.tokens.iter()) {
        let Ok(want) = hex::decode(&t.sha256) else {
            continue;
        };
        // Compare every token, matched or not, so timing does not tell which one matched.
        if bool::from(digest.as_slice().ct_eq(&want)) && found.is_none() {
            found = Some(match (&t.customer, &t.scope) {
                (Some(c), _) => Principal::Customer(c.clone()),
                (None, Some(_)) => Principal::Ingest(t.customers.clone()),
                (None, None) => Principal::Admin,
            });
        }
    }
    found
}

impl FromRequestParts<Arc<Shared>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        // Webhook senders that cannot set headers (e.g. Jira's system webhooks)
        // may pass `?token=` to the ingest endpoints, and only there.
        let ingest = parts.uri.path().starts_with("/v1/ingest/");
        let query_token = || {
            let query = parts.uri.query().unwrap_or_default();
            query.split('&').find_map(|kv| kv.strip_prefix("token="))
        };
        let token = match (header, ingest) {
            (Some(h), _) => h
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?,
            (None, true) => query_token().ok_or_else(|| {
                ApiError::unauthorized("missing Authorization: Bearer <token> or ?token=")
            })?,
            (None, false) => {
                return Err(ApiError::unauthorized(
                    "missing Authorization: Bearer <token>",
                ));
            }
        };
        let who =
            authenticate(shared, token).ok_or_else(|| ApiError::unauthorized("unknown token"))?;
        if matches!(who, Principal::Ingest(_)) && !ingest {
            return Err(ApiError::forbidden(
                "an ingest token may only post to /v1/ingest/*",
            ));
        }
        Ok(who)
    }
}

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
    /// May only post to the ingest endpoints.
    Ingest,
}

impl Principal {
    /// 403 unless this principal may see `customer`.
    pub fn check_customer(&self, customer: &str) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Customer(c) if c == customer => Ok(()),
            Principal::Customer(_) | Principal::Ingest => Err(ApiError::forbidden(format!(
                "this token may not see customer {customer:?}"
            ))),
        }
    }

    /// 403 unless admin.
    pub fn check_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Customer(_) | Principal::Ingest => {
                Err(ApiError::forbidden("this operation needs an admin token"))
            }
        }
    }

    /// 403 unless admin or an ingest token.
    pub fn check_ingest(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin | Principal::Ingest => Ok(()),
            Principal::Customer(_) => {
                Err(ApiError::forbidden("ingest needs an admin or ingest token"))
            }
        }
    }

    /// Whether this principal may see `customer`.
    pub fn sees(&self, customer: &str) -> bool {
        self.check_customer(customer).is_ok()
    }
}

/// Finds the principal for a presented token.
pub fn authenticate(shared: &Shared, token: &str) -> Option<Principal> {
    let digest = Sha256::digest(token.as_bytes());
    let mut found = None;
    for t in shared.config.api.iter().flat_map(|a| a.tokens.iter()) {
        let Ok(want) = hex::decode(t.sha256.get_ref()) else {
            continue;
        };
        // Compare every token, matched or not, so timing does not tell which one matched.
        if bool::from(digest.as_slice().ct_eq(&want)) && found.is_none() {
            found = Some(match (&t.customer, &t.scope) {
                (Some(c), _) => Principal::Customer(c.get_ref().clone()),
                (None, Some(_)) => Principal::Ingest,
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
        if who == Principal::Ingest && !ingest {
            return Err(ApiError::forbidden(
                "an ingest token may only post to /v1/ingest/*",
            ));
        }
        Ok(who)
    }
}

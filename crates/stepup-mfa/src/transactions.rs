//! stepup's own transaction step-up: the approval of **one operation** (an amount to a payee)
//! with a second factor, for `RequireTransaction` in stepup-tower.
//!
//! The rules, in one place:
//!
//! - the layer names an operation the token does not approve ([`Mfa::request_transaction`]):
//!   its canonical JSON is stored for 5 minutes under a random `transaction_id`, with the user
//!   and the user's generation;
//! - the MFA step for it ([`Mfa::start_transaction_step`]) is open to that user only, and its
//!   ticket carries the operation: completed, it ends in a grant for that operation
//!   ([`Conclusion::Approved`](crate::Conclusion::Approved)), **never a token**;
//! - a grant is single-use and lives 5 minutes: [`Mfa::redeem_transaction`] takes it in one atomic
//!   step of the ephemeral store, whatever the answer, and approves only the same user, the same
//!   generation (a reset since voids it) and the byte-identical operation — any change of amount
//!   or payee is refused and the grant is spent;
//! - the audit trail records the operation's digest, never the operation.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepup_core::AuthContext;
use stepup_core::acr::amr;
use stepup_core::policy::{TransactionApprovals, Unavailable, async_trait};
use stepup_core::tokens;

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::authorization::Authentication;
use crate::challenge::MfaChallenge;
use crate::error::{MfaError, MfaNotEnrolled, UnknownTransaction};

/// How long a transaction waits for its approval, and a grant for its redemption.
pub const TRANSACTION_TTL: Duration = Duration::from_secs(5 * 60);
/// The longest operation (canonical JSON) recorded.
const MAX_OPERATION: usize = 4096;
/// The longest transaction id or grant looked at.
const MAX_ID: usize = 128;

/// What a transaction id, or a grant, stands for.
#[derive(Serialize, Deserialize)]
struct Record {
    user: String,
    operation: String,
    generation: u64,
}

/// An approved operation: the grant the client sends back with the same request
/// (`Stepup-Transaction: <grant>`), single-use, [`TRANSACTION_TTL`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionGrant {
    /// The grant.
    pub transaction_grant: String,
    /// The operation it approves (RFC 9396 entries), to show the user.
    pub authorization_details: Value,
    /// Its lifetime in seconds.
    pub expires_in: u64,
}

fn request_key(id: &str) -> String {
    format!("transaction:{}", tokens::digest(id))
}

fn grant_key(grant: &str) -> String {
    format!("transaction_grant:{}", tokens::digest(grant))
}

/// The operation as RFC 9396 `authorization_details`: an array of its one entry.
fn details_of(operation: &str) -> Result<Value, MfaError> {
    let entry: Value = serde_json::from_str(operation).map_err(MfaError::internal)?;
    Ok(Value::Array(vec![entry]))
}

impl Mfa {
    /// Records `operation` (an operation's canonical JSON) as awaiting the approval of the user
    /// `caller` stands for; its `transaction_id`.
    pub async fn request_transaction(
        &self,
        caller: &AuthContext,
        operation: &str,
    ) -> Result<String, MfaError> {
        if operation.len() > MAX_OPERATION
            || !serde_json::from_str::<Value>(operation).is_ok_and(|value| value.is_object())
        {
            return Err(MfaError::invalid_input(
                "an operation is one JSON object of at most 4096 bytes",
            ));
        }
        let user = self.user_of(caller).into_owned();
        let generation = self.current_generation(&user).await?.value;
        let id = tokens::random_token();
        let record = Record {
            user,
            operation: operation.to_owned(),
            generation,
        };
        let record = serde_json::to_vec(&record).map_err(MfaError::internal)?;
        if !self
            .ephemeral()
            .insert_if_absent(&request_key(&id), &record, TRANSACTION_TTL)
            .await?
        {
            return Err(MfaError::internal("transaction id collision"));
        }
        Ok(id)
    }

    /// The MFA step approving the transaction `transaction_id` for `caller` (its user only,
    /// whose token stands for the first factor): the challenge, and the operation to show.
    pub async fn start_transaction_step(
        &self,
        caller: &AuthContext,
        transaction_id: &str,
    ) -> Result<(MfaChallenge, Value), MfaError> {
        self.check_caller(caller).await?;
        if transaction_id.is_empty() || transaction_id.len() > MAX_ID {
            return Err(UnknownTransaction.into());
        }
        let user = self.user_of(caller);
        let stored = self
            .ephemeral()
            .get(&request_key(transaction_id))
            .await?
            .ok_or(UnknownTransaction)?;
        let record: Record = serde_json::from_slice(&stored).map_err(MfaError::internal)?;
        let generation = self.current_generation(&user).await?.value;
        if record.user != *user || record.generation != generation {
            return Err(UnknownTransaction.into());
        }
        if !self.is_enrolled(&user).await? {
            return Err(MfaNotEnrolled.into());
        }
        let first: Vec<&str> = caller
            .amr()
            .iter()
            .map(String::as_str)
            .filter(|method| *method == amr::PWD)
            .collect();
        let details = details_of(&record.operation)?;
        let challenge = self
            .start_challenge_for(&user, &first, None, Some(record.operation))
            .await?;
        Ok((challenge, details))
    }

    /// The grant ending a completed transaction step (see [`Mfa::conclude`]).
    pub(crate) async fn approve_transaction(
        &self,
        authentication: &Authentication,
        operation: &str,
    ) -> Result<TransactionGrant, MfaError> {
        let grant = tokens::random_token();
        let record = Record {
            user: authentication.subject.clone(),
            operation: operation.to_owned(),
            generation: authentication.generation,
        };
        let record = serde_json::to_vec(&record).map_err(MfaError::internal)?;
        if !self
            .ephemeral()
            .insert_if_absent(&grant_key(&grant), &record, TRANSACTION_TTL)
            .await?
        {
            return Err(MfaError::internal("transaction grant collision"));
        }
        let event = AuditEvent::TransactionApproved {
            operation_digest: tokens::digest(operation),
        };
        self.audit().record(&authentication.subject, event).await;
        Ok(TransactionGrant {
            transaction_grant: grant,
            authorization_details: details_of(operation)?,
            expires_in: TRANSACTION_TTL.as_secs(),
        })
    }

    /// Spends `grant` (whatever the answer): whether it approves exactly `operation` (canonical
    /// JSON) for the user `caller` stands for, under the user's current generation.
    pub async fn redeem_transaction(
        &self,
        caller: &AuthContext,
        grant: &str,
        operation: &str,
    ) -> Result<bool, MfaError> {
        if grant.is_empty() || grant.len() > MAX_ID {
            return Ok(false);
        }
        let Some(taken) = self.ephemeral().take(&grant_key(grant)).await? else {
            return Ok(false);
        };
        let record: Record = serde_json::from_slice(&taken).map_err(MfaError::internal)?;
        let user = self.user_of(caller);
        let approved = record.user == *user
            && record.operation == operation
            && record.generation == self.current_generation(&user).await?.value;
        let event = AuditEvent::TransactionRedeemed {
            operation_digest: tokens::digest(operation),
            approved,
        };
        self.audit().record(&record.user, event).await;
        Ok(approved)
    }
}

#[async_trait]
impl TransactionApprovals for Mfa {
    async fn request_approval(
        &self,
        caller: &AuthContext,
        operation: &str,
    ) -> Result<String, Unavailable> {
        self.request_transaction(caller, operation)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "transaction not recorded; refusing");
                Unavailable
            })
    }

    async fn redeem_approval(
        &self,
        caller: &AuthContext,
        grant: &str,
        operation: &str,
    ) -> Result<bool, Unavailable> {
        self.redeem_transaction(caller, grant, operation)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "transaction grant not checked; refusing");
                Unavailable
            })
    }
}

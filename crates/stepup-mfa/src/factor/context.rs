//! [`FactorContext`]: what a factor may do with stepup's state, scoped to its kind and its user.
//! Everything a factor writes goes through here, so the engine's rules (sealing bound to the
//! user, keys of the kind's own, the generation of new credentials, one-time codes stored only
//! as keyed digests) hold for every factor, the application's included.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;
use stepup_core::tokens;
use stepup_store::{Credential, CredentialRef, CredentialStatus};

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::delivery::{self, Purpose, SendPolicy};
use crate::error::{ChallengeInProgress, Internal, MfaError};
use crate::kdf::KdfPool;

/// Where a request came from: what per-address limits count, and what a remembered device
/// records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address, if known (the TCP peer, or what a trusted proxy says). Every
    /// per-address limit groups it by the engine's
    /// [`AddressGrouping`](stepup_core::client::AddressGrouping); unknown clients share one group.
    pub address: Option<IpAddr>,
    /// The `User-Agent` (at most 256 characters are kept).
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// A client at `address`.
    pub fn at(address: IpAddr) -> Self {
        Self {
            address: Some(address),
            user_agent: None,
        }
    }
}

/// A factor's view of stepup's state: its kind, its user, the MFA step it answers, and the
/// operations it may make. Everything a factor writes goes through it, so the engine's rules hold
/// for every factor.
pub struct FactorContext<'a> {
    pub(crate) mfa: &'a Mfa,
    pub(crate) kind: &'static str,
    pub(crate) user: &'a str,
    pub(crate) generation: u64,
    pub(crate) client: &'a ClientInfo,
    pub(crate) challenge: Option<String>,
    pub(crate) transaction: Option<String>,
}

impl<'a> FactorContext<'a> {
    pub(crate) fn new(
        mfa: &'a Mfa,
        kind: &'static str,
        user: &'a str,
        generation: u64,
        client: &'a ClientInfo,
    ) -> Self {
        Self {
            mfa,
            kind,
            user,
            generation,
            client,
            challenge: None,
            transaction: None,
        }
    }

    pub(crate) fn for_challenge(mut self, challenge_id: String) -> Self {
        self.challenge = Some(challenge_id);
        self
    }

    /// The MFA step approves this operation (its canonical JSON), not a login.
    pub(crate) fn for_transaction(mut self, operation: Option<String>) -> Self {
        self.transaction = operation;
        self
    }

    /// When the MFA step approves one operation (a transaction step-up), what the user
    /// approves, in words for a message: `125 EUR to ACME Ltd` for a payment (`amount`,
    /// `currency`, `payee`), else its `type` and fields. A factor that sends a code names it, so
    /// the person reading the code knows what it approves.
    /// Control characters are dropped: the words go into message bodies and mail subjects.
    pub fn approving(&self) -> Option<String> {
        let words = self.operation_words()?;
        Some(words.chars().filter(|c| !c.is_control()).collect())
    }

    fn operation_words(&self) -> Option<String> {
        let operation: serde_json::Value =
            serde_json::from_str(self.transaction.as_deref()?).ok()?;
        let field = |name: &str| operation.get(name).and_then(serde_json::Value::as_str);
        if let (Some(amount), Some(currency), Some(payee)) =
            (field("amount"), field("currency"), field("payee"))
        {
            return Some(format!("{amount} {currency} to {payee}"));
        }
        let fields: Vec<String> = operation
            .as_object()?
            .iter()
            .filter(|(name, _)| name.as_str() != "type")
            .map(|(name, value)| format!("{name} {}", value.as_str().unwrap_or_default()))
            .collect();
        Some(format!("{} ({})", field("type")?, fields.join(", ")))
    }

    /// The factor's kind.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The user (empty while a sign-in has not named one yet).
    pub fn user(&self) -> &str {
        self.user
    }

    /// The user's generation this operation runs under (what new credentials carry).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Where the request came from.
    pub fn client(&self) -> &ClientInfo {
        self.client
    }

    /// Now, by the engine's clock (Unix seconds).
    pub fn now(&self) -> u64 {
        self.mfa.now()
    }

    /// The MFA step being answered: the SHA-256 of its `mfa_token` (the factor never sees the
    /// token). Bind what a step sends or expects to it. An error outside an MFA step.
    pub fn challenge_id(&self) -> Result<&str, MfaError> {
        self.challenge
            .as_deref()
            .ok_or_else(|| MfaError::internal("not in an MFA step"))
    }

    /// The name the user knows their account by (for authenticator apps and passkeys), as the
    /// application says ([`PasswordCheck::account_label`](crate::PasswordCheck::account_label));
    /// the user id otherwise.
    pub async fn account_name(&self) -> String {
        self.mfa.account_label(self.user).await
    }

    /// The account's mail address, if the application keeps one.
    pub async fn account_email(&self) -> Result<Option<String>, MfaError> {
        self.mfa.account_email(self.user).await
    }

    /// Seals `secret` with the keyring's current key, bound to this kind and user: the sealed
    /// text opens for no other user or kind.
    pub fn seal(&self, secret: &[u8]) -> Result<String, MfaError> {
        self.mfa
            .inner
            .keyring
            .seal(secret, &self.sealing_context())
            .map_err(|error| Internal::new(error).into())
    }

    /// Opens what [`seal`](Self::seal) sealed for this kind and user.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, MfaError> {
        self.mfa
            .inner
            .keyring
            .open(sealed, &self.sealing_context())
            .map_err(|error| Internal::new(error).into())
    }

    /// Whether `sealed` is sealed under the keyring's current key.
    pub fn is_sealed_with_current_key(&self, sealed: &str) -> bool {
        crate::Keyring::key_id_of(sealed).ok() == Some(self.mfa.inner.keyring.current_key_id())
    }

    fn sealing_context(&self) -> String {
        format!("{}:{}", self.kind, self.user)
    }

    /// A keyed digest (HMAC-SHA256 under the engine's lookup key, hex) of `data`: store this,
    /// never a code or a destination in the clear. Start `data` with a purpose of the factor's
    /// own (`"sms-number:…"`), so that digests made for different purposes never meet.
    pub fn digest(&self, data: &str) -> String {
        self.mfa.inner.backup.lookup(data)
    }

    /// The pool every slow hash runs in.
    pub fn kdf(&self) -> &KdfPool {
        &self.mfa.inner.kdf
    }

    /// The live, current-generation credential of this kind with `id`, whoever's it is (for a
    /// sign-in that names a credential, not a user).
    pub async fn credential_by_id(&self, id: &str) -> Result<Option<Credential>, MfaError> {
        let Some(credential) = self.mfa.factors().credential_by_id(self.kind, id).await? else {
            return Ok(None);
        };
        let current = self.mfa.current_generation(&credential.user).await?;
        Ok((credential.generation == current.value).then_some(credential))
    }

    /// Compare-and-set of an active credential's counter: `true` if `counter` is above the
    /// stored one and was stored (with `payload` when given, and the use recorded). Exactly one
    /// of concurrent callers with the same counter wins: a time step or signature count is
    /// accepted once.
    pub async fn advance_counter(
        &self,
        credential: &Credential,
        counter: u64,
        payload: Option<&str>,
    ) -> Result<bool, MfaError> {
        let key = self.own(credential)?;
        Ok(self
            .mfa
            .factors()
            .advance_counter(key, counter, payload, self.now())
            .await?)
    }

    /// Compare-and-set of a credential's payload (`true` if it was still `credential.payload`),
    /// recording the use when `used`.
    pub async fn replace_payload(
        &self,
        credential: &Credential,
        new: &str,
        used: bool,
    ) -> Result<bool, MfaError> {
        let key = self.own(credential)?;
        let used_at = used.then(|| self.now());
        Ok(self
            .mfa
            .factors()
            .replace_payload(key, &credential.payload, new, used_at)
            .await?)
    }

    /// Stops trusting a credential (e.g. a suspected clone): it is listed as disabled and never
    /// accepted again until removed and enrolled anew. Audited as `{kind}_{reason}` with the
    /// credential's id, and the user is notified.
    pub async fn distrust(&self, credential: &Credential, reason: &'static str) {
        tracing::warn!(target: "stepup::audit", user = credential.user, kind = self.kind, credential_id = credential.id, reason, "a credential is no longer trusted");
        if let Ok(key) = self.own(credential)
            && let Err(error) = self.mfa.factors().disable_credential(key).await
        {
            tracing::error!(%error, "a distrusted credential could not be disabled");
        }
        let event = AuditEvent::Factor {
            kind: self.kind.to_owned(),
            name: reason,
            detail: serde_json::json!({ "credential_id": credential.id }),
            notify: true,
        };
        self.mfa.audit().record(&credential.user, event).await;
    }

    fn own<'c>(&self, credential: &'c Credential) -> Result<CredentialRef<'c>, MfaError> {
        if credential.kind != self.kind || credential.status == CredentialStatus::Pending {
            return Err(MfaError::internal(
                "a factor may only touch its own credentials",
            ));
        }
        Ok(credential.key())
    }

    /// Keeps `value` under this kind's `key` for `ttl`, unless a live value is there (`true` if
    /// kept): for ceremonies taken once.
    pub async fn put_state(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, MfaError> {
        Ok(self
            .mfa
            .ephemeral()
            .insert_if_absent(&self.state_key(key), value, ttl)
            .await?)
    }

    /// Keeps `value` under this kind's `key` for `ttl`, replacing a live one: of concurrent
    /// replacements one wins and the others are refused ([`ChallengeInProgress`]).
    pub async fn replace_state(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), MfaError> {
        let key = self.state_key(key);
        let ephemeral = self.mfa.ephemeral();
        let current = ephemeral.get(&key).await?;
        if ephemeral
            .compare_and_swap(&key, current.as_deref(), value, ttl)
            .await?
        {
            Ok(())
        } else {
            Err(ChallengeInProgress.into())
        }
    }

    /// The live value under this kind's `key`, left in place.
    pub async fn state(&self, key: &str) -> Result<Option<Vec<u8>>, MfaError> {
        Ok(self.mfa.ephemeral().get(&self.state_key(key)).await?)
    }

    /// Takes (reads and removes, once) the live value under this kind's `key`.
    pub async fn take_state(&self, key: &str) -> Result<Option<Vec<u8>>, MfaError> {
        Ok(self.mfa.ephemeral().take(&self.state_key(key)).await?)
    }

    fn state_key(&self, key: &str) -> String {
        format!("factor:{}:{}", self.kind, tokens::digest(key))
    }

    /// Counts a send of a one-time code to `destination` for `purpose` under `policy` (the
    /// cooldown, then the per-destination, per-user and per-address limits), or refuses it
    /// (`429`, audited as `{kind}_refused` with the reason). Shared by every factor that sends
    /// codes.
    pub async fn admit_send(
        &self,
        policy: &SendPolicy,
        destination: &str,
        purpose: Purpose<'_>,
    ) -> Result<(), MfaError> {
        delivery::admit_send(self, policy, destination, purpose).await
    }

    /// A fresh 6-digit code for `purpose`, stored only as its keyed digest (bound to the purpose)
    /// for `ttl` (at most [`delivery::MAX_CODE_TTL`]); it replaces the user's earlier code of this
    /// kind. Deliver it yourself, then audit with [`code_sent`](Self::code_sent).
    pub async fn issue_code(
        &self,
        purpose: Purpose<'_>,
        ttl: Duration,
    ) -> Result<String, MfaError> {
        delivery::issue_code(self, purpose, ttl).await
    }

    /// Consumes the code for `purpose` if `code` is it and it is live: `true` for exactly one of
    /// concurrent callers.
    pub async fn consume_code(&self, purpose: Purpose<'_>, code: &str) -> Result<bool, MfaError> {
        delivery::consume_code(self, purpose, code).await
    }

    /// Forgets the user's codes of this kind in flight.
    pub async fn clear_codes(&self) -> Result<(), MfaError> {
        delivery::clear_codes(self).await
    }

    /// Audits (and logs) that a code went out for `purpose`, never the code or destination.
    pub async fn code_sent(&self, purpose: Purpose<'_>) {
        let event = AuditEvent::factor(
            self.kind,
            "sent",
            serde_json::json!({ "purpose": purpose.name() }),
        );
        self.mfa.audit().record(self.user, event).await;
    }

    /// Audits `{kind}_{name}` with `detail` (which must hold no secret, code or destination).
    pub async fn record(&self, name: &'static str, detail: Value) {
        let event = AuditEvent::factor(self.kind, name, detail);
        self.mfa.audit().record(self.user, event).await;
    }
}

//! The engine answers the questions of stepup's tower layers
//! ([`stepup_core::policy`]): whether a token still stands, whether a client may make one more
//! request, whether a DPoP proof is used for the first time, whose device a cookie is (in
//! [`devices`](crate::devices)). The layers hold no store;
//! the engine's one rule answers every layer and every route alike.

use std::net::IpAddr;
use std::time::Duration;

use stepup_core::AuthContext;
use stepup_core::policy::{
    Admission, ProofReplay, RequestCeiling, RevocationCheck, Revoked, Unavailable, async_trait,
};

use crate::Mfa;

/// The shortest ceiling window (stores keep whole seconds).
const MIN_WINDOW: Duration = Duration::from_secs(1);

#[async_trait]
impl RevocationCheck for Mfa {
    async fn check(&self, caller: &AuthContext) -> Result<(), Revoked> {
        match self.check_token(caller).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Revoked::Revoked),
            Err(error) => {
                tracing::warn!(%error, "revocation check failed; refusing");
                Err(Revoked::Unavailable)
            }
        }
    }

    fn check_now(&self, caller: &AuthContext) -> Option<Result<(), Revoked>> {
        let stands = self.check_token_now(caller)?;
        Some(if stands {
            Ok(())
        } else {
            Err(Revoked::Revoked)
        })
    }
}

#[async_trait]
impl RequestCeiling for Mfa {
    async fn admit(
        &self,
        name: &str,
        client: Option<IpAddr>,
        max: u64,
        window: Duration,
    ) -> Result<Admission, Unavailable> {
        let window = window.max(MIN_WINDOW);
        let key = format!("rate:{name}:{}", self.address_key(client));
        let count = self
            .ephemeral()
            .increment(&key, window)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "request ceiling store failed; refusing");
                Unavailable
            })?;
        Ok(if count > max {
            Admission::Limited {
                retry_after: window,
            }
        } else {
            Admission::Allowed
        })
    }
}

/// DPoP proofs are remembered in the ephemeral store every instance shares (`insert_if_absent`,
/// atomic on every backend), so a proof replayed on another instance is refused. The store keeps
/// whole seconds: a time to live is rounded up to at least one.
#[async_trait]
impl ProofReplay for Mfa {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, Unavailable> {
        let ttl =
            Duration::from_secs(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(MIN_WINDOW);
        self.ephemeral()
            .insert_if_absent(key, b"", ttl)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "DPoP replay store failed; refusing");
                Unavailable
            })
    }
}

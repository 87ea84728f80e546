//! The engine answers the questions of stepup's tower layers
//! ([`stepup_core::policy`]): whether a token still stands, whether a client may make one more
//! request, whose device a cookie is (in [`devices`](crate::devices)). The layers hold no store;
//! the engine's one rule answers every layer and every route alike.

use std::net::IpAddr;
use std::time::Duration;

use stepup_core::AuthContext;
use stepup_core::policy::{
    Admission, RequestCeiling, RevocationCheck, Revoked, Unavailable, async_trait,
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

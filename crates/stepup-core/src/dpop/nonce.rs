//! Stateless server nonces (RFC 9449 §8, §9): a nonce names a time bucket and carries a keyed
//! HMAC-SHA-256 of it, so every instance sharing the secret issues and accepts the same nonces
//! without storing any. A nonce is current for one rotation period and accepted for one more;
//! the secret itself rotates with [`DpopNonces::with_previous_secret`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::Error;

/// What the MAC covers besides the bucket: a nonce of this purpose and format only.
const CONTEXT: &[u8] = b"stepup dpop nonce v1";
/// Bytes of the MAC kept in a nonce (128 bits).
const TAG_LEN: usize = 16;

/// Issues and checks DPoP server nonces; see [`DpopPolicy::with_nonces`](super::DpopPolicy::with_nonces).
///
/// ```
/// use std::time::Duration;
/// use stepup_core::dpop::DpopNonces;
///
/// let nonces = DpopNonces::new(b"a secret shared by every instance, 32+ bytes")?
///     .with_rotation(Duration::from_secs(60))?;
/// let nonce = nonces.issue(1_800_000_000);
/// assert_eq!(nonces.check(&nonce, 1_800_000_010), Some(true));
/// assert_eq!(nonces.check(&nonce, 1_800_000_070), Some(false)); // previous: still accepted
/// assert_eq!(nonces.check(&nonce, 1_800_000_200), None); // stale
/// # Ok::<(), stepup_core::Error>(())
/// ```
#[derive(Clone)]
pub struct DpopNonces {
    keyed: Arc<Hmac<Sha256>>,
    /// Secrets replaced by `keyed`, whose nonces are still accepted (never issued).
    previous: Arc<[Hmac<Sha256>]>,
    period: u64,
}

impl DpopNonces {
    /// Nonces keyed by `secret` (at least 32 bytes, the same on every instance), rotated every
    /// 5 minutes.
    pub fn new(secret: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            keyed: Arc::new(keyed(secret)?),
            previous: Arc::new([]),
            period: 300,
        })
    }

    /// Also accepts the nonces of `secret`, the one this secret replaced: during a rotation of
    /// the secret, instances still issuing under the old one are not refused (nonces are only
    /// ever issued under the current secret).
    pub fn with_previous_secret(mut self, secret: &[u8]) -> Result<Self, Error> {
        let mut previous = self.previous.to_vec();
        previous.push(keyed(secret)?);
        self.previous = previous.into();
        Ok(self)
    }

    /// How long a nonce is current (between 10 seconds and 1 hour; default 5 minutes).
    pub fn with_rotation(mut self, period: Duration) -> Result<Self, Error> {
        if !(Duration::from_secs(10)..=Duration::from_secs(3600)).contains(&period) {
            return Err(Error::Config(
                "a DPoP nonce rotation between 10 seconds and 1 hour is required",
            ));
        }
        self.period = period.as_secs();
        Ok(self)
    }

    /// The nonce current at `now` (Unix seconds).
    pub fn issue(&self, now: u64) -> String {
        let bucket = now / self.period;
        let mut nonce = bucket.to_be_bytes().to_vec();
        nonce.extend_from_slice(&self.tag(bucket)[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(nonce)
    }

    /// `Some(true)` for the current nonce, `Some(false)` for the previous one (still accepted),
    /// `None` for anything else (stale, future, forged, malformed). The MAC is compared in
    /// constant time.
    pub fn check(&self, nonce: &str, now: u64) -> Option<bool> {
        if nonce.len() > 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if bytes.len() != 8 + TAG_LEN {
            return None;
        }
        let (bucket, tag) = bytes.split_at(8);
        let bucket = u64::from_be_bytes(bucket.try_into().ok()?);
        let current = now / self.period;
        if bucket != current && bucket.checked_add(1) != Some(current) {
            return None;
        }
        let verifies = |keyed: &Hmac<Sha256>| mac(keyed, bucket).verify_truncated_left(tag).is_ok();
        if !verifies(&self.keyed) && !self.previous.iter().any(verifies) {
            return None;
        }
        Some(bucket == current)
    }

    fn tag(&self, bucket: u64) -> Vec<u8> {
        mac(&self.keyed, bucket).finalize().into_bytes().to_vec()
    }
}

/// HMAC-SHA-256 keyed by `secret` (at least 32 bytes).
fn keyed(secret: &[u8]) -> Result<Hmac<Sha256>, Error> {
    if secret.len() < 32 {
        return Err(Error::InvalidKey(
            "a DPoP nonce secret needs at least 32 bytes".into(),
        ));
    }
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .map_err(|_| Error::InvalidKey("the DPoP nonce secret is not usable".into()))
}

/// The MAC of `bucket` under `keyed`, for a nonce of this format only.
fn mac(keyed: &Hmac<Sha256>, bucket: u64) -> Hmac<Sha256> {
    let mut mac = keyed.clone();
    mac.update(CONTEXT);
    mac.update(&bucket.to_be_bytes());
    mac
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_bound_to_their_secret_and_bucket() {
        let nonces = DpopNonces::new(&[7; 32]).unwrap();
        let other = DpopNonces::new(&[8; 32]).unwrap();
        let nonce = nonces.issue(3_000);
        assert_eq!(nonces.check(&nonce, 3_000), Some(true));
        assert_eq!(other.check(&nonce, 3_000), None);
        assert_eq!(nonces.check(&nonce, 2_999), None, "a nonce from the future");
        let mut forged = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        forged[7] ^= 1;
        assert_eq!(nonces.check(&URL_SAFE_NO_PAD.encode(&forged), 3_000), None);
        for junk in ["", "not base64!", "AAAA", &"A".repeat(100)] {
            assert_eq!(nonces.check(junk, 3_000), None, "{junk}");
        }
        assert!(DpopNonces::new(&[1; 31]).is_err());
        // A rotation of the secret: the old secret's nonces are still accepted by the new.
        let rotated = DpopNonces::new(&[8; 32])
            .unwrap()
            .with_previous_secret(&[7; 32])
            .unwrap();
        assert_eq!(rotated.check(&nonce, 3_000), Some(true));
        assert_eq!(nonces.check(&rotated.issue(3_000), 3_000), None);
        assert!(rotated.clone().with_previous_secret(&[1; 31]).is_err());
        assert!(
            nonces
                .clone()
                .with_rotation(Duration::from_secs(5))
                .is_err()
        );
    }
}

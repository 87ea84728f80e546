//! Sealed secrets: TOTP secrets and SMS phone numbers are stored encrypted with XChaCha20-Poly1305 under a key id.
//!
//! Format: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The associated data binds a sealed
//! secret to its purpose and user, so a ciphertext copied onto another user's row does not open.
//! A [`Keyring`] seals with its current key and opens any key it holds, so keys rotate without
//! downtime: add the new key as current, keep the old one, re-seal (`Mfa::reseal_secrets`), then
//! drop the old key.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;

/// Why sealing or opening failed. Deliberately vague: never says which byte was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sealed text is not in the `v1.<kid>.<data>` format.
    #[error("the sealed secret is malformed")]
    Malformed,
    /// No key with the sealed secret's id is in the keyring.
    #[error("the sealed secret's key is not in the keyring")]
    UnknownKey,
    /// Authentication failed: wrong key, wrong context or tampered data.
    #[error("the sealed secret does not open")]
    Rejected,
    /// A key id or key is unfit.
    #[error("invalid sealing key: {0}")]
    InvalidKey(&'static str),
}

/// The sealing keys: one current (seals), any number of older ones (open only).
#[derive(Clone)]
pub struct Keyring {
    current: String,
    keys: HashMap<String, XChaCha20Poly1305>,
}

impl Keyring {
    /// A keyring sealing with the 32-byte `key` named `key_id` (letters, digits, `-`, `_`).
    pub fn new(key_id: &str, key: &[u8]) -> Result<Self, SealError> {
        let mut keyring = Self {
            current: key_id.to_owned(),
            keys: HashMap::new(),
        };
        keyring.insert(key_id, key)?;
        Ok(keyring)
    }

    /// Also opens secrets sealed under an older key.
    pub fn with_old_key(mut self, key_id: &str, key: &[u8]) -> Result<Self, SealError> {
        self.insert(key_id, key)?;
        Ok(self)
    }

    /// A fresh random 32-byte key.
    pub fn generate_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key
    }

    /// The id new secrets are sealed under.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext` for `context` (e.g. `totp:<user>`).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, SealError> {
        let cipher = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        let ciphertext = cipher
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::Rejected)?;
        let mut data = nonce.to_vec();
        data.extend_from_slice(&ciphertext);
        Ok(format!(
            "{VERSION}.{}.{}",
            self.current,
            URL_SAFE_NO_PAD.encode(data)
        ))
    }

    /// Opens a sealed secret for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let (key_id, data) = parse(sealed)?;
        let cipher = self.keys.get(key_id).ok_or(SealError::UnknownKey)?;
        let data = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| SealError::Malformed)?;
        if data.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Malformed)?;
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        cipher
            .decrypt(&nonce, payload)
            .map_err(|_| SealError::Rejected)
    }

    /// The key id a sealed secret was sealed under.
    pub fn key_id_of(sealed: &str) -> Result<&str, SealError> {
        parse(sealed).map(|(key_id, _)| key_id)
    }

    fn insert(&mut self, key_id: &str, key: &[u8]) -> Result<(), SealError> {
        let valid_id = !key_id.is_empty()
            && key_id.len() <= 64
            && key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_id {
            return Err(SealError::InvalidKey(
                "a key id is 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| SealError::InvalidKey("a sealing key is exactly 32 bytes"))?;
        self.keys.insert(key_id.to_owned(), cipher);
        Ok(())
    }
}

fn parse(sealed: &str) -> Result<(&str, &str), SealError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(VERSION), Some(key_id), Some(data)) => Ok((key_id, data)),
        _ => Err(SealError::Malformed),
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &ids)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let keyring = Keyring::new("k1", &[7; 32]).unwrap();
        let sealed = keyring.seal(b"secret", "totp:alice").unwrap();
        assert!(sealed.starts_with("v1.k1."));
        assert!(!sealed.contains("secret"));
        assert_eq!(keyring.open(&sealed, "totp:alice").unwrap(), b"secret");
        assert_eq!(keyring.open(&sealed, "totp:bob"), Err(SealError::Rejected));

        let other = Keyring::new("k1", &[8; 32]).unwrap();
        assert_eq!(other.open(&sealed, "totp:alice"), Err(SealError::Rejected));
        let unknown = Keyring::new("k2", &[7; 32]).unwrap();
        assert_eq!(
            unknown.open(&sealed, "totp:alice"),
            Err(SealError::UnknownKey)
        );
    }

    #[test]
    fn tampering_and_garbage_are_refused_without_panicking() {
        let keyring = Keyring::new("k1", &[7; 32]).unwrap();
        let sealed = keyring.seal(b"secret", "ctx").unwrap();
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(keyring.open(&tampered, "ctx").is_err());
        for garbage in [
            "",
            "v1",
            "v1.k1",
            "v1.k1.",
            "v1.k1.!!",
            "v2.k1.AAAA",
            "v1.k1.AAAA",
        ] {
            assert!(keyring.open(garbage, "ctx").is_err(), "{garbage}");
        }
    }

    #[test]
    fn rotation_opens_old_secrets_and_seals_under_the_new_key() {
        let old = Keyring::new("2025", &[1; 32]).unwrap();
        let sealed = old.seal(b"secret", "ctx").unwrap();
        let rotated = Keyring::new("2026", &[2; 32])
            .unwrap()
            .with_old_key("2025", &[1; 32])
            .unwrap();
        assert_eq!(rotated.open(&sealed, "ctx").unwrap(), b"secret");
        let resealed = rotated.seal(b"secret", "ctx").unwrap();
        assert_eq!(Keyring::key_id_of(&resealed), Ok("2026"));
    }

    #[test]
    fn bad_keys_and_ids_are_refused() {
        assert!(Keyring::new("k1", &[0; 16]).is_err());
        assert!(Keyring::new("k.1", &[0; 32]).is_err());
        assert!(Keyring::new("", &[0; 32]).is_err());
    }
}

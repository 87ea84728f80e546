//! Opaque single-use tokens (`mfa_token`s, authorization codes, device cookies): how they are
//! made and the only form in which they are stored.
//!
//! ```
//! use stepup_core::tokens::{digest, random_token};
//!
//! let token = random_token();
//! assert_eq!(token.len(), 43);
//! assert_eq!(digest(&token).len(), 64);
//! assert_ne!(digest(&token), token);
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, base64url (43 characters): a bearer secret.
pub fn random_token() -> String {
    random_base64::<32>()
}

/// 96 random bits, base64url: an identifier shown to users, not a secret.
pub fn random_id() -> String {
    random_base64::<12>()
}

/// The SHA-256 of a token, in hex: what the stores keep instead of the token. A full-entropy
/// token needs no salt or slow hash; its digest cannot be turned back into it.
pub fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_base64<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

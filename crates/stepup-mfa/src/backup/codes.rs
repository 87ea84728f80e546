//! Backup codes: ten `XXXXX-XXXXX` codes, shown once, stored only as hashes.
//!
//! One attempt costs one hash check, however many codes a user has: a keyed digest
//! (HMAC-SHA256 under the lookup key) of the normalised code finds at most one stored row, and only
//! that row's argon2id hash is then checked. The digest alone does not reveal codes: without the
//! lookup key it cannot be brute-forced from a database dump, and with it each guess still costs an
//! argon2id evaluation against the row's hash.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Codes in a set.
pub const CODE_COUNT: usize = 10;
/// Characters in a code, without the dash.
const CODE_LEN: usize = 10;
/// 32 symbols without look-alikes (no 0/O, 1/I/L... only I, O, 0 and 1 left out): 5 bits each, 50 bits a code.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Makes, hashes and checks backup codes under a lookup key.
#[derive(Clone)]
pub struct BackupCodes {
    /// HMAC-SHA256 keyed once with the lookup key; each lookup clones it.
    mac: Hmac<Sha256>,
}

impl BackupCodes {
    /// Uses `lookup_key` (at least 32 bytes, kept secret like a sealing key) for the lookup digest.
    pub fn new(lookup_key: &[u8]) -> Result<Self, &'static str> {
        if lookup_key.len() < 32 {
            return Err("the backup-code lookup key needs at least 32 bytes");
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(lookup_key)
            .map_err(|_| "the backup-code lookup key is unusable")?;
        Ok(Self { mac })
    }

    /// A fresh set of [`CODE_COUNT`] codes, formatted `XXXXX-XXXXX`.
    pub fn generate() -> Vec<String> {
        let mut rng = rand::rng();
        (0..CODE_COUNT)
            .map(|_| {
                let mut bytes = [0u8; CODE_LEN];
                rng.fill_bytes(&mut bytes);
                // 256 is a multiple of 32, so masking keeps every symbol equally likely.
                let symbols: String = bytes
                    .iter()
                    .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                    .collect();
                format!("{}-{}", &symbols[..5], &symbols[5..])
            })
            .collect()
    }

    /// The canonical form of user input: case-insensitive, spaces and dashes ignored. `None` when it
    /// cannot be a code (wrong length, a symbol outside the alphabet).
    pub fn normalise(input: &str) -> Option<String> {
        if input.len() > 64 {
            return None;
        }
        let code: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid = code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b));
        valid.then_some(code)
    }

    /// The lookup digest (hex) of a normalised code.
    pub fn lookup(&self, normalised: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(normalised.as_bytes());
        stepup_core::tokens::hex(&mac.finalize().into_bytes())
    }

    /// The argon2id hash (PHC string) of a normalised code, in memory allocated for this one
    /// hash. The engine hashes through its bounded pool instead
    /// ([`KdfPool::hash_many`](crate::KdfPool::hash_many)), in the same format.
    pub fn hash(normalised: &str) -> Result<String, argon2::password_hash::Error> {
        Ok(Argon2::default()
            .hash_password(normalised.as_bytes())?
            .to_string())
    }

    /// Whether `normalised` matches the stored argon2id `hash` (constant-time inside argon2), in
    /// memory allocated for this one check. The engine checks through its bounded pool instead
    /// ([`KdfPool::verify`](crate::KdfPool::verify)).
    pub fn verify(normalised: &str, hash: &str) -> bool {
        Argon2::default()
            .verify_password(normalised.as_bytes(), hash)
            .is_ok()
    }
}

impl std::fmt::Debug for BackupCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupCodes").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_shape_and_alphabet_promised() {
        let codes = BackupCodes::generate();
        assert_eq!(codes.len(), CODE_COUNT);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(BackupCodes::normalise(code).is_some(), "{code}");
            assert!(!code.contains(['0', '1', 'I', 'O']));
        }
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), CODE_COUNT);
    }

    #[test]
    fn input_is_normalised() {
        assert_eq!(
            BackupCodes::normalise("abcde-fghjk").as_deref(),
            Some("ABCDEFGHJK")
        );
        assert_eq!(
            BackupCodes::normalise(" AB CDE FGHJK ").as_deref(),
            Some("ABCDEFGHJK")
        );
        assert_eq!(
            BackupCodes::normalise("ABCDE--FGHJK").as_deref(),
            Some("ABCDEFGHJK")
        );
        for bad in [
            "",
            "ABCDE-FGHJ",
            "ABCDE-FGHJKL",
            "ABCDE-FGHJ0",
            "ABCDE-FGHJI",
            "ÄBCDE-FGHJK",
        ] {
            assert_eq!(BackupCodes::normalise(bad), None, "{bad}");
        }
        assert_eq!(BackupCodes::normalise(&"A".repeat(100_000)), None);
    }

    #[test]
    fn lookups_are_keyed_and_hashes_verify() {
        let a = BackupCodes::new(&[1; 32]).unwrap();
        let b = BackupCodes::new(&[2; 32]).unwrap();
        assert_eq!(a.lookup("ABCDEFGHJK"), a.lookup("ABCDEFGHJK"));
        assert_ne!(a.lookup("ABCDEFGHJK"), b.lookup("ABCDEFGHJK"));
        assert_ne!(a.lookup("ABCDEFGHJK"), a.lookup("ABCDEFGHJM"));
        let hash = BackupCodes::hash("ABCDEFGHJK").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(BackupCodes::verify("ABCDEFGHJK", &hash));
        assert!(!BackupCodes::verify("ABCDEFGHJM", &hash));
        assert!(!BackupCodes::verify("ABCDEFGHJK", "not a hash"));
        assert!(BackupCodes::new(&[1; 16]).is_err());
    }
}

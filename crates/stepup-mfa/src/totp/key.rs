//! TOTP (RFC 6238) with `totp-rs`: secrets, enrollment URIs, locally made QR codes, verification
//! returning the matched time step so the caller can refuse a step twice.

use std::fmt;

use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Bytes of a generated secret: 160 bits, as RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// The HMAC of a TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TotpAlgorithm {
    /// HMAC-SHA1, what every authenticator app supports (default).
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl TotpAlgorithm {
    /// The name stored and used in `otpauth://` URIs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn to_totp_rs(self) -> Algorithm {
        match self {
            Self::Sha1 => Algorithm::SHA1,
            Self::Sha256 => Algorithm::SHA256,
            Self::Sha512 => Algorithm::SHA512,
        }
    }
}

/// TOTP parameters for new enrollments (existing ones keep those they were made with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    /// Issuer shown in the authenticator app.
    pub issuer: String,
    /// HMAC algorithm (default SHA1).
    pub algorithm: TotpAlgorithm,
    /// 6 (default) or 8.
    pub digits: u8,
    /// Seconds per step (default 30).
    pub period: u64,
    /// Steps accepted either side of the current one (default 1, at most 2).
    pub skew: u8,
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            issuer: "stepup".into(),
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

/// One user's TOTP generator, built from a secret and parameters.
pub struct TotpKey {
    totp: Totp,
    skew: u64,
}

impl TotpKey {
    /// Builds a key; fails on parameters `totp-rs` refuses (digits outside 6–8, secret under 128 bits).
    pub fn new(
        secret: &[u8],
        algorithm: TotpAlgorithm,
        digits: u8,
        period: u64,
        skew: u8,
        issuer: &str,
        account: &str,
    ) -> Result<Self, InvalidTotp> {
        if !(6..=8).contains(&digits) || period == 0 || skew > 2 {
            return Err(InvalidTotp);
        }
        let totp = Builder::new()
            .with_algorithm(algorithm.to_totp_rs())
            .with_digits(digits)
            .with_skew(0)
            .with_step_duration(period)
            .with_secret(Secret::new(secret.to_vec().into_boxed_slice()))
            .with_issuer(Some(sanitise_label(issuer)))
            .with_account_name(sanitise_label(account))
            .build()
            .map_err(|_| InvalidTotp)?;
        Ok(Self {
            totp,
            skew: u64::from(skew),
        })
    }

    /// A fresh random 160-bit secret.
    pub fn generate_secret() -> [u8; SECRET_LEN] {
        let mut secret = [0u8; SECRET_LEN];
        rand::rng().fill_bytes(&mut secret);
        secret
    }

    /// The secret in base32, for manual entry.
    pub fn secret_base32(&self) -> String {
        self.totp.secret().to_base32()
    }

    /// The `otpauth://totp/…` URI.
    pub fn otpauth_uri(&self) -> Result<String, InvalidTotp> {
        self.totp.to_url().map_err(|_| InvalidTotp)
    }

    /// The URI as a QR code, made locally: `data:image/png;base64,…`.
    pub fn qr_code_data_url(&self) -> Result<String, InvalidTotp> {
        let png = self.totp.to_qr_base64().map_err(|_| InvalidTotp)?;
        Ok(format!("data:image/png;base64,{png}"))
    }

    /// The code for Unix time `time`.
    pub fn code_at(&self, time: u64) -> String {
        self.totp.generate(time).to_string()
    }

    /// The newest time step `code` matches at Unix time `time`, within the skew, if any. The comparison is
    /// constant-time (`totp-rs`); input that is not exactly the right number of digits (spaces
    /// allowed) matches nothing.
    pub fn matching_step(&self, code: &str, time: u64) -> Option<u64> {
        let digits: String = code.chars().filter(|c| *c != ' ').collect();
        let well_formed = digits.len() == usize::from(self.totp.digits())
            && digits.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return None;
        }
        let period = self.totp.step();
        let current = time / period;
        let first = current.saturating_sub(self.skew);
        // Newest step first: should two steps of the window share a code (one chance in a
        // million), the later step is the one recorded, so the code cannot be accepted twice.
        (first..=current.saturating_add(self.skew))
            .rev()
            .find(|&step| self.totp.check(&digits, step.saturating_mul(period)) == Some(step))
    }
}

impl fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpKey").finish_non_exhaustive()
    }
}

/// `:` separates issuer and account in an `otpauth` label; it may not appear inside either.
fn sanitise_label(text: &str) -> String {
    text.replace(':', " ")
}

/// TOTP parameters or a secret that `totp-rs` refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid TOTP parameters")]
pub struct InvalidTotp;

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B: every one of the 18 test values.
    #[test]
    fn rfc_6238_appendix_b() {
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        let key = |seed: &[u8], algorithm| {
            TotpKey::new(seed, algorithm, 8, 30, 0, "RFC", "test").unwrap()
        };
        let sha1 = key(SEED_SHA1, TotpAlgorithm::Sha1);
        let sha256 = key(SEED_SHA256, TotpAlgorithm::Sha256);
        let sha512 = key(SEED_SHA512, TotpAlgorithm::Sha512);
        for (time, expected1, expected256, expected512) in vectors {
            assert_eq!(sha1.code_at(time), expected1, "SHA1 at {time}");
            assert_eq!(sha256.code_at(time), expected256, "SHA256 at {time}");
            assert_eq!(sha512.code_at(time), expected512, "SHA512 at {time}");
            assert_eq!(sha1.matching_step(expected1, time), Some(time / 30));
            assert_eq!(sha256.matching_step(expected256, time), Some(time / 30));
            assert_eq!(sha512.matching_step(expected512, time), Some(time / 30));
        }
    }

    #[test]
    fn the_window_is_one_step_either_side_exactly() {
        let key = TotpKey::new(SEED_SHA1, TotpAlgorithm::Sha1, 6, 30, 1, "i", "a").unwrap();
        let step_start = 1_800_000_000 / 30 * 30;
        let code = key.code_at(step_start);
        let step = step_start / 30;
        // Previous step's last second and next step's last second: still inside the window.
        assert_eq!(key.matching_step(&code, step_start - 1), Some(step));
        assert_eq!(key.matching_step(&code, step_start + 30 + 29), Some(step));
        // One second further either way: outside.
        assert_eq!(key.matching_step(&code, step_start - 31), None);
        assert_eq!(key.matching_step(&code, step_start + 60), None);
    }

    #[test]
    fn malformed_codes_match_nothing() {
        let key = TotpKey::new(SEED_SHA1, TotpAlgorithm::Sha1, 6, 30, 1, "i", "a").unwrap();
        let code = key.code_at(1_800_000_000);
        assert!(
            key.matching_step(&format!("{} {}", &code[..3], &code[3..]), 1_800_000_000)
                .is_some()
        );
        for bad in [
            "",
            "12345",
            "1234567",
            "12a456",
            "１２３４５６",
            &"9".repeat(10_000),
        ] {
            assert_eq!(key.matching_step(bad, 1_800_000_000), None, "{bad}");
        }
    }

    #[test]
    fn uri_and_qr_code_are_made_locally() {
        let key = TotpKey::new(
            SEED_SHA1,
            TotpAlgorithm::Sha1,
            6,
            30,
            1,
            "Acme: Bank",
            "ada@example.com",
        )
        .unwrap();
        let uri = key.otpauth_uri().unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(
            uri.contains("issuer=Acme%20%20Bank") || uri.contains("issuer=Acme"),
            "{uri}"
        );
        let qr = key.qr_code_data_url().unwrap();
        assert!(
            qr.starts_with("data:image/png;base64,iVBORw0KGgo"),
            "{}",
            &qr[..40]
        );
    }

    #[test]
    fn unfit_parameters_are_refused() {
        assert!(TotpKey::new(&[1; 10], TotpAlgorithm::Sha1, 6, 30, 1, "i", "a").is_err());
        assert!(TotpKey::new(SEED_SHA1, TotpAlgorithm::Sha1, 9, 30, 1, "i", "a").is_err());
        assert!(TotpKey::new(SEED_SHA1, TotpAlgorithm::Sha1, 6, 0, 1, "i", "a").is_err());
        assert!(TotpKey::new(SEED_SHA1, TotpAlgorithm::Sha1, 6, 30, 3, "i", "a").is_err());
    }
}

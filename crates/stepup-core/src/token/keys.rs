use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::Error;

/// HMAC secrets shorter than the hash output are refused (RFC 7518 §3.2).
const MIN_HMAC_SECRET_LEN: usize = 32;

/// A key that checks signatures, bound to one algorithm and optionally named by a `kid`.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

impl VerifyingKey {
    /// An HS256 secret (at least 32 bytes).
    pub fn hs256(secret: &[u8]) -> Result<Self, Error> {
        check_hmac_secret(secret)?;
        let key = DecodingKey::from_secret(secret).map_err(invalid_key)?;
        Ok(Self::new(Algorithm::HS256, key))
    }

    /// An RS256 public key in PEM (SPKI or PKCS#1).
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, Error> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(invalid_key)?;
        Ok(Self::new(Algorithm::RS256, key))
    }

    /// An ES256 (P-256) public key in PEM.
    pub fn es256_pem(pem: &[u8]) -> Result<Self, Error> {
        let key = DecodingKey::from_ec_pem(pem).map_err(invalid_key)?;
        Ok(Self::new(Algorithm::ES256, key))
    }

    /// An EdDSA (Ed25519) public key in PEM.
    pub fn eddsa_pem(pem: &[u8]) -> Result<Self, Error> {
        let key = DecodingKey::from_ed_pem(pem).map_err(invalid_key)?;
        Ok(Self::new(Algorithm::EdDSA, key))
    }

    /// A public JWK (RFC 7517), such as one entry of an identity provider's JWKS.
    ///
    /// The algorithm comes from the JWK's `alg`, or else from its key type (RSA → RS256,
    /// P-256 → ES256, Ed25519 → EdDSA). Symmetric (`oct`) JWKs are refused: a shared secret does
    /// not belong in a published key set.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, Error> {
        let inferred = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => return Err(Error::InvalidKey("unsupported JWK key type".into())),
        };
        let algorithm = match jwk.common.key_algorithm {
            None => inferred,
            Some(KeyAlgorithm::RS256) => Algorithm::RS256,
            Some(KeyAlgorithm::ES256) => Algorithm::ES256,
            Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
            Some(_) => return Err(Error::InvalidKey("JWK algorithm not allowed".into())),
        };
        if algorithm != inferred {
            return Err(Error::InvalidKey(
                "JWK algorithm does not match its key type".into(),
            ));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(invalid_key)?;
        let key = Self::new(algorithm, key);
        Ok(match &jwk.common.key_id {
            Some(kid) => key.with_kid(kid.clone()),
            None => key,
        })
    }

    /// Names the key; tokens select it with their `kid` header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// This public key as a JWK (RFC 7517) to publish: EC P-256 `x`/`y`, Ed25519 `x` or RSA
    /// `n`/`e`, with its `kid`, `alg` and `use: sig`. `None` for an HS256 secret, which is never
    /// published.
    pub fn public_jwk(&self) -> Result<Option<Jwk>, Error> {
        if self.algorithm == Algorithm::HS256 {
            return Ok(None);
        }
        super::crypto_provider();
        let mut jwk =
            Jwk::from_decoding_key(&self.key, Some(self.algorithm)).map_err(invalid_key)?;
        jwk.common.key_id = self.kid.clone();
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Some(jwk))
    }

    fn new(algorithm: Algorithm, key: DecodingKey) -> Self {
        Self {
            kid: None,
            algorithm,
            key,
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A private key that signs access tokens, with the public half that verifies them.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) key: EncodingKey,
    pub(crate) verifying: VerifyingKey,
}

impl SigningKey {
    /// An HS256 secret (at least 32 bytes); the same secret verifies.
    pub fn hs256(secret: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            verifying: VerifyingKey::hs256(secret)?,
            key: EncodingKey::from_secret(secret).map_err(invalid_key)?,
        })
    }

    /// An RS256 key pair in PEM (private PKCS#8 or PKCS#1, public SPKI).
    pub fn rs256_pem(private_pem: &[u8], public_pem: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            key: EncodingKey::from_rsa_pem(private_pem).map_err(invalid_key)?,
            verifying: VerifyingKey::rs256_pem(public_pem)?,
        })
    }

    /// An ES256 (P-256) key pair in PEM (private PKCS#8).
    pub fn es256_pem(private_pem: &[u8], public_pem: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            key: EncodingKey::from_ec_pem(private_pem).map_err(invalid_key)?,
            verifying: VerifyingKey::es256_pem(public_pem)?,
        })
    }

    /// An Ed25519 key pair in PEM (private PKCS#8).
    pub fn eddsa_pem(private_pem: &[u8], public_pem: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            key: EncodingKey::from_ed_pem(private_pem).map_err(invalid_key)?,
            verifying: VerifyingKey::eddsa_pem(public_pem)?,
        })
    }

    /// Names the key pair; issued tokens carry this `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.verifying = self.verifying.with_kid(kid);
        self
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.verifying.algorithm
    }

    /// The public half as a JWK to publish (see [`VerifyingKey::public_jwk`]); `None` for HS256.
    pub fn public_jwk(&self) -> Result<Option<Jwk>, Error> {
        self.verifying.public_jwk()
    }

    /// A new random ES256 (P-256) key pair, named `kid`, with its PEM forms to persist (reload
    /// it with [`SigningKey::es256_pem`] and [`with_kid`](Self::with_kid)).
    pub fn generate_es256(kid: impl Into<String>) -> Result<GeneratedKey, Error> {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        use rand::RngCore;
        let secret = loop {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            // A scalar out of range (probability about 2^-32) draws again.
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
                break key;
            }
        };
        let private_pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| Error::InvalidKey(error.to_string()))?
            .to_string();
        let public_pem = secret
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|error| Error::InvalidKey(error.to_string()))?;
        let kid = kid.into();
        let key = Self::es256_pem(private_pem.as_bytes(), public_pem.as_bytes())?.with_kid(&kid);
        Ok(GeneratedKey {
            key,
            kid,
            private_pem,
            public_pem,
        })
    }
}

/// A freshly generated key pair ([`SigningKey::generate_es256`]) and the PEM forms to keep it in.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The key, named.
    pub key: SigningKey,
    /// Its `kid`.
    pub kid: String,
    /// The private key, PKCS#8 PEM: a secret.
    pub private_pem: String,
    /// The public key, SPKI PEM.
    pub public_pem: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.verifying.kid)
            .field("algorithm", &self.verifying.algorithm)
            .finish_non_exhaustive()
    }
}

fn check_hmac_secret(secret: &[u8]) -> Result<(), Error> {
    if secret.len() < MIN_HMAC_SECRET_LEN {
        return Err(Error::InvalidKey(format!(
            "an HS256 secret needs at least {MIN_HMAC_SECRET_LEN} bytes"
        )));
    }
    Ok(())
}

fn invalid_key(error: jsonwebtoken::errors::Error) -> Error {
    Error::InvalidKey(error.to_string())
}

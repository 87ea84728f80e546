//! The RustCrypto `CryptoProvider` for `jsonwebtoken` 12, for the four algorithms stepup allows
//! (HS256, RS256, ES256, EdDSA).
//!
//! `jsonwebtoken` 12 ships such a provider behind its `rust_crypto` feature, but that feature needs
//! `rsa` 0.10.0, which cannot share a build with the `rsa` 0.10 release candidate that
//! `webauthn-rs` 0.6 requires (one semver-compatible version per build). This module is that
//! provider, adapted from `jsonwebtoken`'s own (`src/crypto/rust_crypto`, MIT licence, © Vincent
//! Prouillet and contributors) onto the stable RustCrypto releases already in the tree: `hmac`
//! 0.13 + `sha2` 0.11, `p256` 0.14, `ed25519-dalek` 2 and `rsa` 0.9. It only wires those crates'
//! own signing and verification into `jsonwebtoken`'s traits; no cryptography is written here.
//! Algorithms outside the allow-list are refused (`UnsupportedAlgorithm`). PS256 is verified
//! too (never signed): DPoP proofs may use it; access tokens never do (their keys are bound to
//! the four algorithms above).

use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use p256::pkcs8::DecodePrivateKey as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The provider: installed as `jsonwebtoken`'s process default unless the `aws-lc` feature (or
/// the application) chose another one.
pub(super) static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_from_private_key,
        rsa_pub_components_from_public_key: rsa_components_from_public_key,
        ec_pub_components_from_private_key: ec_components_from_private_key,
        ed_pub_components_from_private_key,
        compute_digest,
    },
};

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Ok(match algorithm {
        Algorithm::HS256 => Box::new(Hs256::signer(key)?),
        Algorithm::RS256 => Box::new(Rs256Signer::new(key)?),
        Algorithm::ES256 => Box::new(Es256Signer::new(key)?),
        Algorithm::EdDSA => Box::new(EdDsaSigner::new(key)?),
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    })
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Ok(match algorithm {
        Algorithm::HS256 => Box::new(Hs256::verifier(key)?),
        Algorithm::RS256 => Box::new(Rs256Verifier::new(key)?),
        Algorithm::ES256 => Box::new(Es256Verifier::new(key)?),
        Algorithm::EdDSA => Box::new(EdDsaVerifier::new(key)?),
        Algorithm::PS256 => Box::new(Ps256Verifier(Rs256Verifier::new(key)?.0)),
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    })
}

fn expect_family(family: AlgorithmFamily, expected: AlgorithmFamily) -> Result<()> {
    if family == expected {
        Ok(())
    } else {
        Err(ErrorKind::InvalidKeyFormat.into())
    }
}

// HS256

struct Hs256(Hmac<Sha256>);

impl Hs256 {
    fn signer(key: &EncodingKey) -> Result<Self> {
        expect_family(key.family(), AlgorithmFamily::Hmac)?;
        Self::keyed(key.as_bytes())
    }

    fn verifier(key: &DecodingKey) -> Result<Self> {
        expect_family(key.family(), AlgorithmFamily::Hmac)?;
        Self::keyed(key.try_get_as_bytes()?)
    }

    fn keyed(secret: &[u8]) -> Result<Self> {
        Hmac::new_from_slice(secret)
            .map(Self)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        // Constant-time comparison, by `hmac`.
        mac.verify_slice(signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

// RS256 (RSASSA-PKCS1-v1_5 with SHA-256)

struct Rs256Signer(rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>);

impl Rs256Signer {
    fn new(key: &EncodingKey) -> Result<Self> {
        expect_family(key.family(), AlgorithmFamily::Rsa)?;
        let private = rsa::RsaPrivateKey::from_pkcs1_der(key.as_bytes())
            .map_err(|error| ErrorKind::InvalidRsaKey(error.to_string()))?;
        Ok(Self(rsa::pkcs1v15::SigningKey::new(private)))
    }
}

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        use rsa::signature::{RandomizedSigner, SignatureEncoding};
        // Blinded with fresh randomness from the operating system.
        self.0
            .try_sign_with_rng(&mut rsa::rand_core::OsRng, message)
            .map(|signed| signed.to_vec())
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

struct Rs256Verifier(rsa::RsaPublicKey);

impl Rs256Verifier {
    fn new(key: &DecodingKey) -> Result<Self> {
        expect_family(key.family(), AlgorithmFamily::Rsa)?;
        let public = match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => rsa::RsaPublicKey::from_pkcs1_der(der)
                .map_err(|error| ErrorKind::InvalidRsaKey(error.to_string()))?,
            DecodingKeyKind::RsaModulusExponent { n, e } => rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(n),
                rsa::BigUint::from_bytes_be(e),
            )
            .map_err(|error| ErrorKind::InvalidRsaKey(error.to_string()))?,
        };
        Ok(Self(public))
    }
}

impl Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        let digest = <rsa::sha2::Sha256 as rsa::sha2::Digest>::digest(message);
        self.0
            .verify(
                rsa::Pkcs1v15Sign::new::<rsa::sha2::Sha256>(),
                &digest,
                signature,
            )
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

// PS256 (RSASSA-PSS with SHA-256, MGF1 with SHA-256, a salt as long as the hash)

struct Ps256Verifier(rsa::RsaPublicKey);

impl Verifier<Vec<u8>> for Ps256Verifier {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        let digest = <rsa::sha2::Sha256 as rsa::sha2::Digest>::digest(message);
        self.0
            .verify(rsa::Pss::new::<rsa::sha2::Sha256>(), &digest, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Ps256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::PS256
    }
}

// ES256 (ECDSA on P-256 with SHA-256)

struct Es256Signer(p256::ecdsa::SigningKey);

impl Es256Signer {
    fn new(key: &EncodingKey) -> Result<Self> {
        expect_family(key.family(), AlgorithmFamily::Ec)?;
        p256::ecdsa::SigningKey::from_pkcs8_der(key.as_bytes())
            .map(Self)
            .map_err(|_| ErrorKind::InvalidEcdsaKey.into())
    }
}

impl Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        // Deterministic nonces (RFC 6979), by `ecdsa`.
        let signed: p256::ecdsa::Signature = self.0.try_sign(message)?;
        Ok(signed.to_vec())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct Es256Verifier(p256::ecdsa::VerifyingKey);

impl Es256Verifier {
    fn new(key: &DecodingKey) -> Result<Self> {
        expect_family(key.family(), AlgorithmFamily::Ec)?;
        p256::ecdsa::VerifyingKey::from_sec1_bytes(key.try_get_as_bytes()?)
            .map(Self)
            .map_err(|_| ErrorKind::InvalidEcdsaKey.into())
    }
}

impl Verifier<Vec<u8>> for Es256Verifier {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        let signature = p256::ecdsa::Signature::from_slice(signature)?;
        self.0.verify(message, &signature)
    }
}

impl JwtVerifier for Es256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

// EdDSA (Ed25519)

struct EdDsaSigner(ed25519_dalek::SigningKey);

impl EdDsaSigner {
    fn new(key: &EncodingKey) -> Result<Self> {
        expect_family(key.family(), AlgorithmFamily::Ed)?;
        ed25519_dalek::SigningKey::from_pkcs8_der(key.as_bytes())
            .map(Self)
            .map_err(|_| ErrorKind::InvalidEddsaKey.into())
    }
}

impl Signer<Vec<u8>> for EdDsaSigner {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        use ed25519_dalek::Signer as _;
        Ok(self.0.sign(message).to_bytes().to_vec())
    }
}

impl JwtSigner for EdDsaSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct EdDsaVerifier(ed25519_dalek::VerifyingKey);

impl EdDsaVerifier {
    fn new(key: &DecodingKey) -> Result<Self> {
        expect_family(key.family(), AlgorithmFamily::Ed)?;
        let bytes: &[u8; 32] = key
            .try_get_as_bytes()?
            .try_into()
            .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?;
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| ErrorKind::InvalidEddsaKey.into())
    }
}

impl Verifier<Vec<u8>> for EdDsaVerifier {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        let signature =
            ed25519_dalek::Signature::from_slice(signature).map_err(|_| signature::Error::new())?;
        // Strict verification: no malleable or small-order encodings.
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for EdDsaVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

// Key utilities (public JWKs from private keys, thumbprints).

fn rsa_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let private = rsa::RsaPrivateKey::from_pkcs1_der(der)
        .map_err(|error| ErrorKind::InvalidRsaKey(error.to_string()))?;
    let public = private.to_public_key();
    Ok((public.n().to_bytes_be(), public.e().to_bytes_be()))
}

fn rsa_components_from_public_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let public = rsa::RsaPublicKey::from_pkcs1_der(der)
        .map_err(|error| ErrorKind::InvalidRsaKey(error.to_string()))?;
    Ok((public.n().to_bytes_be(), public.e().to_bytes_be()))
}

fn ec_components_from_private_key(
    der: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    if algorithm != Algorithm::ES256 {
        return Err(ErrorKind::InvalidEcdsaKey.into());
    }
    let signing =
        p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    let point = signing.verifying_key().to_sec1_point(false);
    match point.coordinates() {
        p256::elliptic_curve::sec1::Coordinates::Uncompressed { x, y } => {
            Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn ed_pub_components_from_private_key(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    match curve {
        EllipticCurve::Ed25519 => Ok(ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map_err(|_| ErrorKind::InvalidEddsaKey)?
            .verifying_key()
            .as_bytes()
            .to_vec()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    Ok(match hash {
        ThumbprintHash::SHA256 => Sha256::digest(data).to_vec(),
        ThumbprintHash::SHA384 => Sha384::digest(data).to_vec(),
        ThumbprintHash::SHA512 => Sha512::digest(data).to_vec(),
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    })
}

//! Which cryptography checks token signatures: `jsonwebtoken`'s RustCrypto backend (the default,
//! pure Rust) or its aws-lc-rs backend (the `aws-lc` cargo feature; much faster RS256 and ES256).
//!
//! `jsonwebtoken` picks its backend per process, through one `CryptoProvider`. stepup brings its
//! own RustCrypto provider (always compiled) and, with the `aws-lc` feature, enables
//! `jsonwebtoken`'s aws-lc one; it installs its choice (aws-lc when compiled in) the first time it
//! builds a verifier or signs a token, so a build with both backends works. A provider the
//! application installed before that is respected.
//!
//! ```
//! use stepup_core::token::{CryptoBackend, crypto_backend};
//!
//! let backend = crypto_backend();
//! if cfg!(feature = "aws-lc") {
//!     assert_eq!(backend, CryptoBackend::AwsLc);
//! } else {
//!     assert_eq!(backend, CryptoBackend::RustCrypto);
//! }
//! ```

use std::fmt;
use std::sync::Once;

use jsonwebtoken::crypto::CryptoProvider;

/// The cryptography `jsonwebtoken` uses in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoBackend {
    /// RustCrypto (`hmac`, `sha2`, `p256`, `rsa`, `ed25519-dalek`): pure Rust, the default.
    RustCrypto,
    /// aws-lc-rs (the `aws-lc` feature).
    AwsLc,
    /// A provider the application installed itself.
    Custom,
}

impl CryptoBackend {
    /// The backends compiled into this build: RustCrypto always, aws-lc with the `aws-lc` feature.
    pub fn compiled() -> &'static [CryptoBackend] {
        #[cfg(feature = "aws-lc")]
        {
            &[Self::RustCrypto, Self::AwsLc]
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            &[Self::RustCrypto]
        }
    }

    /// This backend's `jsonwebtoken` provider, when it is compiled in (not for [`Self::Custom`]).
    /// stepup uses only the process-wide one ([`crypto_provider`]); this is for comparing
    /// backends, as `benches/layers.rs` does.
    pub fn provider(self) -> Option<&'static CryptoProvider> {
        match self {
            Self::RustCrypto => Some(&super::rust_crypto::PROVIDER),
            #[cfg(feature = "aws-lc")]
            Self::AwsLc => Some(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER),
            _ => None,
        }
    }
}

impl fmt::Display for CryptoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RustCrypto => "RustCrypto",
            Self::AwsLc => "aws-lc",
            Self::Custom => "custom",
        })
    }
}

/// Makes sure `jsonwebtoken` has a crypto provider (aws-lc with the `aws-lc` feature, RustCrypto
/// otherwise, unless the application installed one) and returns it.
///
/// stepup calls this itself before it verifies or signs anything; call it only when you use
/// `jsonwebtoken` directly before any stepup verifier or issuer exists.
pub fn crypto_provider() -> &'static CryptoProvider {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if CryptoProvider::try_get_default().is_none() {
            // Losing a race against the application's own installation is fine: its choice wins.
            let _ = preferred().install_default();
        }
    });
    CryptoProvider::try_get_default().unwrap_or_else(preferred)
}

/// The backend in use (see [`crypto_provider`]).
pub fn crypto_backend() -> CryptoBackend {
    let provider = crypto_provider();
    if std::ptr::eq(provider, &super::rust_crypto::PROVIDER) {
        return CryptoBackend::RustCrypto;
    }
    #[cfg(feature = "aws-lc")]
    if std::ptr::eq(provider, &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER) {
        return CryptoBackend::AwsLc;
    }
    CryptoBackend::Custom
}

fn preferred() -> &'static CryptoProvider {
    #[cfg(feature = "aws-lc")]
    {
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
    }
    #[cfg(not(feature = "aws-lc"))]
    {
        &super::rust_crypto::PROVIDER
    }
}

//! [`OAuthClient`]: a client configured for the authorization-code flow (the engine's type).

pub use stepup_mfa::OAuthClient;

//! The smallest app with stepup: an existing axum API that adds the layers and the drop-in
//! routes, on an embedded SQLite file. `cargo run --example quickstart`, then:
//!
//! ```text
//! # sign in (ada / correct horse): a token at acr "pwd"
//! curl -s localhost:3001/oauth/authorize -H 'content-type: application/json' \
//!   -d '{"username":"ada","password":"correct horse"}'
//! # the money route wants a second factor: 401 with an RFC 9470 challenge
//! curl -si -X POST localhost:3001/api/transfer -H "authorization: Bearer $TOKEN"
//! # enroll an authenticator app (POST /api/mfa/factors/totp, then …/totp/confirm {code}),
//! # sign in again with the code (POST /oauth/authorize/mfa), and the route answers.
//! ```
//!
//! Keys come from the environment in production; here they are fixed so that the example runs
//! as is. Do not copy the keys.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use stepup::mfa::{PasswordCheckFailed, kdf::KdfPool};
use stepup::{AuthContext, JwtIssuer, Keyring, PasswordCheck, RequireMfa, SqliteStore, StepUp};

/// The application's own users (a table, in a real app): stepup only asks about them.
struct Users {
    /// `ada`'s password hash (argon2id).
    ada: String,
    kdf: KdfPool,
}

#[stepup::policy::async_trait]
impl PasswordCheck for Users {
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed> {
        let hash = self.ada.clone();
        let password = password.to_owned();
        // Checked for every username, so an unknown one takes as long as a wrong password.
        let matches = self
            .kdf
            .run(move || argon2_verify(&password, &hash))
            .await
            .map_err(|_| PasswordCheckFailed)?;
        Ok((matches && username == "ada").then(|| "user-ada".to_owned()))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed> {
        Ok(user == "user-ada")
    }

    async fn account_label(&self, _user: &str) -> Option<String> {
        Some("ada@example.com".to_owned())
    }
}

fn argon2_verify(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

fn argon2_hash(password: &str) -> String {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .expect("hashing works")
        .to_string()
}

/// The API you already have: a profile, and a route that moves money.
fn your_api() -> Router {
    Router::new()
        .route(
            "/api/me",
            get(|me: AuthContext| async move { format!("hello {}", me.subject()) }),
        )
        .route(
            "/api/transfer",
            // A second factor from the last 5 minutes, or an RFC 9470 challenge.
            post(|me: AuthContext| async move { format!("sent, {}", me.subject()) })
                .layer(RequireMfa.max_age(Duration::from_secs(300))),
        )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let kdf = KdfPool::default();
    let stepup = StepUp::builder()
        .issuer(JwtIssuer::hs256(
            b"quickstart only: use a secret from your vault",
        )?)
        .store(SqliteStore::open("sqlite://stepup-quickstart.db").await?)
        .keyring(Keyring::new("k1", &[7; 32])?)
        .lookup_key(&[8; 32])
        .passwords(Users {
            ada: argon2_hash("correct horse"),
            kdf: kdf.clone(),
        })
        .kdf_pool(kdf)
        .build()?;
    let app = your_api()
        // Tokens of a deleted, recovered or reset account stop working at once.
        .layer(stepup.reject_revoked())
        .merge(stepup.routes())
        .layer(stepup.authenticate());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("quickstart on http://{}", listener.local_addr()?);
    // The peer address feeds the per-address limits.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

//! Driving the WebAuthn factor over HTTP with the soft authenticators of
//! `webauthn-authenticator-rs`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup_mfa::webauthn::{CreationChallengeResponse, RequestChallengeResponse};
use webauthn_authenticator_rs::WebauthnAuthenticator;

use super::{Answer, App};

/// What an authenticator gets from `{publicKey: …}` creation options.
pub fn creation_options(body: &Value) -> CreationChallengeResponse {
    serde_json::from_value(json!({ "publicKey": body["publicKey"] })).unwrap()
}

/// What an authenticator gets from `{publicKey: …}` request options.
pub fn request_options(body: &Value) -> RequestChallengeResponse {
    serde_json::from_value(json!({ "publicKey": body["publicKey"] })).unwrap()
}

/// What a discoverable authenticator does on its own (the soft ones only answer allow-listed
/// credentials and return no user handle): pick its credential.
pub fn as_discoverable(options: &Value, credential_id: &Value) -> RequestChallengeResponse {
    let mut public_key = options["publicKey"].clone();
    public_key["allowCredentials"] = json!([{ "type": "public-key", "id": credential_id }]);
    serde_json::from_value(json!({ "publicKey": public_key })).unwrap()
}

impl App {
    /// Starts a passkey registration for the holder of `token` on `start` (the earlier path
    /// `/api/mfa/webauthn/register/start` or the generic `/api/mfa/factors/webauthn`); returns
    /// the answer.
    pub async fn start_passkey(&self, start: &str, token: &str) -> Answer {
        let started = self.post(start, Some(token), json!({})).await;
        assert_eq!(started.status, StatusCode::OK, "{started:?}");
        assert_eq!(started.cache_control.as_deref(), Some("no-store"));
        started
    }

    /// `authenticator`'s registration answering `started`, as the finish body (with a label).
    pub fn registration(
        &self,
        started: &Answer,
        authenticator: &mut impl WebauthnAuthenticator,
    ) -> Value {
        let credential = authenticator
            .do_registration(self.origin.clone(), creation_options(&started.body))
            .unwrap();
        json!({
            "registration_token": started.body["registration_token"],
            "credential": credential,
            "label": "my key",
        })
    }

    /// Registers a credential of `authenticator` for the holder of `token` through the earlier
    /// paths; returns the finish answer and the user handle the authenticator was given.
    pub async fn add_passkey(
        &self,
        token: &str,
        authenticator: &mut impl WebauthnAuthenticator,
    ) -> (Answer, Value) {
        let started = self
            .start_passkey("/api/mfa/webauthn/register/start", token)
            .await;
        let handle = started.body["publicKey"]["user"]["id"].clone();
        let body = self.registration(&started, authenticator);
        let finished = self
            .post("/api/mfa/webauthn/register/finish", Some(token), body)
            .await;
        (finished, handle)
    }

    /// Adds `email` and logs in with the password; returns the password token.
    pub async fn password_token(&self, email: &str) -> String {
        self.register(email).await;
        self.login(email).await.token()
    }

    /// The request options of the MFA step of `mfa_token` (the earlier path), answered by
    /// `authenticator`: the proof for `POST /oauth/authorize/mfa`.
    pub async fn assertion_for(
        &self,
        mfa_token: &str,
        authenticator: &mut impl WebauthnAuthenticator,
    ) -> Value {
        let options = self
            .post(
                "/oauth/authorize/mfa/webauthn/start",
                None,
                json!({ "mfa_token": mfa_token }),
            )
            .await;
        assert_eq!(options.status, StatusCode::OK, "{options:?}");
        let credential = authenticator
            .do_authentication(self.origin.clone(), request_options(&options.body))
            .unwrap();
        json!({ "method": "webauthn", "credential": credential })
    }

    /// Logs in with the password and answers the MFA step with `authenticator`.
    pub async fn second_factor(
        &self,
        email: &str,
        authenticator: &mut impl WebauthnAuthenticator,
    ) -> Answer {
        let mfa_token = self.mfa_token(email).await;
        let proof = self.assertion_for(&mfa_token, authenticator).await;
        self.mfa_step(&mfa_token, proof).await
    }

    /// Starts a passwordless login and answers it with `authenticator`'s `credential_id`,
    /// returning the user `handle` as a discoverable credential would; returns the
    /// `passkey_token` and the assertion.
    pub async fn passkey_login(
        &self,
        authenticator: &mut impl WebauthnAuthenticator,
        credential_id: &Value,
        handle: &Value,
    ) -> (String, Value) {
        let started = self
            .post("/oauth/authorize/passkey/start", None, json!({}))
            .await;
        assert_eq!(started.status, StatusCode::OK, "{started:?}");
        let assertion = authenticator
            .do_authentication(
                self.origin.clone(),
                as_discoverable(&started.body, credential_id),
            )
            .unwrap();
        let mut assertion = serde_json::to_value(assertion).unwrap();
        assertion["response"]["userHandle"] = handle.clone();
        (
            started.body["passkey_token"].as_str().unwrap().to_owned(),
            assertion,
        )
    }
}

//! OAuth 2.1 with PKCE: the client's parameters, its redirect and the token exchange.

use super::*;

/// The PKCE verifier of [`with_pkce`] requests.
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more";
/// The `state` of [`with_pkce`] requests, returned in the redirect.
pub const PKCE_STATE: &str = "af0ifjsldkj&x=1";

/// The S256 challenge of `verifier`.
pub fn challenge_of(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// `body` with the client's authorization parameters (the S256 challenge of
/// [`PKCE_VERIFIER`], [`PKCE_STATE`]).
pub fn with_pkce(mut body: Value) -> Value {
    body["client_id"] = json!(CLIENT_ID);
    body["redirect_uri"] = json!(REDIRECT_URI);
    body["state"] = json!(PKCE_STATE);
    body["code_challenge"] = json!(challenge_of(PKCE_VERIFIER));
    body["code_challenge_method"] = json!("S256");
    body
}

impl App {
    /// Posts `body` to `path`, expects a `302` to the client's redirect URI with
    /// [`PKCE_STATE`]; returns the code.
    pub async fn redirected_code(&self, path: &str, body: Value) -> String {
        let response = self
            .request(Method::POST, path, None)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{response:?}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let query = location
            .strip_prefix(&format!("{REDIRECT_URI}?"))
            .unwrap_or_else(|| panic!("redirected elsewhere: {location}"));
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(get("state").as_deref(), Some(PKCE_STATE));
        get("code").expect("the redirect carries a code")
    }

    /// `POST /oauth/token` with `form`.
    pub async fn exchange(&self, form: &[(&str, &str)]) -> Answer {
        Answer::read(self.request(Method::POST, "/oauth/token", None).form(form)).await
    }

    /// `POST /oauth/token` with `code` and [`PKCE_VERIFIER`].
    pub async fn redeem_code(&self, code: &str) -> Answer {
        self.exchange(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", PKCE_VERIFIER),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
        ])
        .await
    }
}

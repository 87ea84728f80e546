//! The JSON answer of a route, as the HTTP tests read it.

use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

/// A JSON answer: its status, the headers the tests look at, its body.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// `WWW-Authenticate`.
    pub challenge: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Retry-After`.
    pub retry_after: Option<String>,
    /// `Set-Cookie`.
    pub set_cookie: Option<String>,
    /// The JSON body.
    pub body: Value,
}

impl Answer {
    /// Sends `request`; the answer must be JSON.
    ///
    /// # Panics
    ///
    /// When the request fails or the answer is not JSON.
    pub async fn read(request: RequestBuilder) -> Self {
        let response = request.send().await.unwrap();
        Self::from_response(response).await
    }

    /// Reads `response`; it must be JSON.
    ///
    /// # Panics
    ///
    /// When the answer is not JSON.
    pub async fn from_response(response: reqwest::Response) -> Self {
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &reqwest::header::HeaderValue| value.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/json"),
            "{status}: every answer is JSON"
        );
        let challenge = header("www-authenticate");
        let cache_control = header("cache-control");
        let retry_after = header("retry-after");
        let set_cookie = header("set-cookie");
        Self {
            status,
            challenge,
            cache_control,
            retry_after,
            set_cookie,
            body: response.json().await.unwrap(),
        }
    }

    /// Asserts an error answer: `status`, `{"error": code, "error_description": …}`, and never
    /// cached (`Cache-Control: no-store`).
    ///
    /// # Panics
    ///
    /// When the answer is anything else.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["error"], code, "{self:?}");
        assert!(
            self.body["error_description"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "{self:?}"
        );
        assert_eq!(
            self.cache_control.as_deref(),
            Some("no-store"),
            "an error answer is never cached: {self:?}"
        );
    }

    /// The access token of a `200` token answer.
    ///
    /// # Panics
    ///
    /// When the answer is not a `200` with an `access_token`.
    pub fn token(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        self.body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {self:?}"))
            .to_owned()
    }
}

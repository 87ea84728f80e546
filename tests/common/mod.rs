//! Shared fixtures: keys, a controlled clock, token minting (valid and hostile) and a test service.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use stepup::clock::ManualClock;
use stepup::{AuthContext, JwtVerifier, SigningKey};
use tower::{Service, ServiceExt};

/// The fixed "now" of every test: 2027-01-15T08:00:00Z.
pub const T0: u64 = 1_800_000_000;
pub const ISSUER: &str = "https://auth.test";
pub const AUDIENCE: &str = "https://api.test";
pub const HS_SECRET: &[u8] = b"test secret of thirty-two bytes or more!";

pub const RSA_PRIVATE: &[u8] = include_bytes!("../keys/rsa_private.pem");
pub const RSA_PUBLIC: &[u8] = include_bytes!("../keys/rsa_public.pem");
pub const EC_PRIVATE: &[u8] = include_bytes!("../keys/ec_private.pem");
pub const EC_PUBLIC: &[u8] = include_bytes!("../keys/ec_public.pem");
pub const ED_PRIVATE: &[u8] = include_bytes!("../keys/ed_private.pem");
pub const ED_PUBLIC: &[u8] = include_bytes!("../keys/ed_public.pem");
pub const JWKS: &str = include_str!("../keys/jwks.json");

pub fn clock() -> ManualClock {
    ManualClock::at_unix(T0)
}

/// The four signing keys, named `hs`, `rs`, `es`, `ed`.
pub fn signing_keys() -> Vec<SigningKey> {
    vec![
        SigningKey::hs256(HS_SECRET).unwrap().with_kid("hs"),
        SigningKey::rs256_pem(RSA_PRIVATE, RSA_PUBLIC)
            .unwrap()
            .with_kid("rs"),
        SigningKey::es256_pem(EC_PRIVATE, EC_PUBLIC)
            .unwrap()
            .with_kid("es"),
        SigningKey::eddsa_pem(ED_PRIVATE, ED_PUBLIC)
            .unwrap()
            .with_kid("ed"),
    ]
}

/// A verifier trusting all four keys, judged by `clock`.
pub fn verifier(clock: &ManualClock) -> JwtVerifier {
    signing_keys()
        .iter()
        .fold(JwtVerifier::builder(), |builder, key| {
            builder.key(key.verifying_key().clone())
        })
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// Good claims at `T0` with the given `acr`.
pub fn claims(acr: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": T0,
        "exp": T0 + 600,
        "auth_time": T0,
        "acr": acr,
        "amr": ["pwd", "otp"],
        "jti": "token-1",
    })
}

/// Signs `claims` with `jsonwebtoken` under `algorithm`, `kid` and `key`.
pub fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    // `jsonwebtoken` is called directly here, perhaps before stepup built anything.
    stepup::token::crypto_provider();
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub fn hs_token(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        Some("hs"),
        claims,
        &EncodingKey::from_secret(HS_SECRET).unwrap(),
    )
}

/// A token assembled by hand: any header, any payload, any signature.
pub fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// What the test handler saw.
pub async fn echo(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.extensions().get::<AuthContext>() {
        Some(caller) => format!("hello {}", caller.subject()),
        None => "anonymous".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// A request to `service` with the given `Authorization` value, if any.
pub async fn call<S, B>(service: &S, authorization: Option<HeaderValue>) -> Answer
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut request = Request::new(Full::new(Bytes::new()));
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
    }
    Answer::read(service.clone().oneshot(request).await.unwrap()).await
}

pub fn bearer(token: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(&format!("Bearer {token}")).unwrap())
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub www_authenticate: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl Answer {
    pub async fn read<B>(response: Response<B>) -> Self
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &HeaderValue| value.to_str().unwrap().to_owned())
        };
        let www_authenticate = header(http::header::WWW_AUTHENTICATE);
        let content_type = header(http::header::CONTENT_TYPE);
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Self {
            status,
            www_authenticate,
            content_type,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// Asserts a `401 invalid_token` with `description`, in header and JSON body.
    pub fn assert_invalid_token(&self, description: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{self:?}");
        assert_eq!(
            self.www_authenticate.as_deref(),
            Some(
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
                    .as_str()
            ),
        );
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            self.json(),
            json!({"error": "invalid_token", "error_description": description})
        );
    }

    /// Asserts the bare `401 WWW-Authenticate: Bearer` of a request without credentials.
    pub fn assert_missing_token(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{self:?}");
        assert_eq!(self.www_authenticate.as_deref(), Some("Bearer"));
        assert_eq!(
            self.json(),
            json!({"error": "unauthorized", "error_description": "a bearer access token is required"})
        );
    }
}

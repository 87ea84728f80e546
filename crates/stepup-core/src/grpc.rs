//! Refusals as gRPC statuses, for layers in front of a gRPC service (tonic, or any gRPC server on
//! tower): a gRPC client reads the outcome of a call from `grpc-status`, not from the HTTP status.
//!
//! A refusal is a *trailers-only* response: HTTP `200`, `content-type: application/grpc`,
//! `grpc-status`, `grpc-message` (percent-encoded), `grpc-status-details-bin` (a
//! `google.rpc.Status` carrying one `google.rpc.ErrorInfo`, unpadded base64), the challenge's
//! `WWW-Authenticate` unchanged, and an empty body. The stepup layers answer this way when the
//! request's `content-type` is `application/grpc` (or `application/grpc+…`).
//!
//! ```
//! use stepup_core::grpc::{GrpcCode, GrpcStatus, is_grpc_request};
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert("content-type", "application/grpc+proto".parse().unwrap());
//! assert!(is_grpc_request(&headers));
//!
//! let status = GrpcStatus::new(GrpcCode::Unauthenticated, "a bearer access token is required")
//!     .with_reason("UNAUTHORIZED");
//! let response = status.to_response();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["grpc-status"], "16");
//! assert_eq!(response.headers()["grpc-message"], "a%20bearer%20access%20token%20is%20required");
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Response};

/// The `domain` of every `google.rpc.ErrorInfo` stepup sends.
pub const ERROR_DOMAIN: &str = "stepup";

/// Whether the request is a gRPC call: `content-type` `application/grpc`, `application/grpc+…`
/// or `application/grpc;…` (gRPC-Web requests are translated to these by a `tonic-web` layer
/// outside, or answered over plain HTTP).
pub fn is_grpc_request(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    let prefix = b"application/grpc";
    value.len() >= prefix.len()
        && value[..prefix.len()].eq_ignore_ascii_case(prefix)
        && matches!(value.get(prefix.len()), None | Some(b'+' | b';'))
}

/// The gRPC status codes stepup answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrpcCode {
    /// `7`: the caller is known but may not do this (a missing scope; a step-up the provider
    /// cannot be asked for).
    PermissionDenied = 7,
    /// `8`: too many requests.
    ResourceExhausted = 8,
    /// `14`: stepup cannot judge the call now (fail closed); retry.
    Unavailable = 14,
    /// `16`: no valid credentials, or not strong or recent enough (step-up).
    Unauthenticated = 16,
}

/// A gRPC status to answer with; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStatus {
    code: GrpcCode,
    message: String,
    reason: Option<String>,
    metadata: Vec<(String, String)>,
}

impl GrpcStatus {
    /// A status with `code` and the human-readable `message`.
    pub fn new(code: GrpcCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
            metadata: Vec::new(),
        }
    }

    /// Adds a `google.rpc.ErrorInfo` detail with this `reason` (UPPER_SNAKE_CASE, e.g.
    /// `INSUFFICIENT_USER_AUTHENTICATION`) and the domain [`ERROR_DOMAIN`].
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds an entry to the `ErrorInfo`'s metadata (e.g. `acr_values` → `mfa`).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// The status code.
    pub fn code(&self) -> GrpcCode {
        self.code
    }

    /// The message (before percent-encoding).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The serialized `google.rpc.Status` sent as `grpc-status-details-bin` (before base64).
    pub fn details(&self) -> Vec<u8> {
        let mut status = Vec::new();
        put_varint_field(&mut status, 1, self.code as u64);
        put_bytes_field(&mut status, 2, self.message.as_bytes());
        if let Some(reason) = &self.reason {
            let mut info = Vec::new();
            put_bytes_field(&mut info, 1, reason.as_bytes());
            put_bytes_field(&mut info, 2, ERROR_DOMAIN.as_bytes());
            for (key, value) in &self.metadata {
                let mut entry = Vec::new();
                put_bytes_field(&mut entry, 1, key.as_bytes());
                put_bytes_field(&mut entry, 2, value.as_bytes());
                put_bytes_field(&mut info, 3, &entry);
            }
            let mut any = Vec::new();
            put_bytes_field(
                &mut any,
                1,
                b"type.googleapis.com/google.rpc.ErrorInfo".as_slice(),
            );
            put_bytes_field(&mut any, 2, &info);
            put_bytes_field(&mut status, 3, &any);
        }
        status
    }

    /// The trailers-only response: HTTP `200`, `content-type: application/grpc`, `grpc-status`,
    /// `grpc-message`, `grpc-status-details-bin`, and an empty body.
    pub fn to_response(&self) -> Response<String> {
        let mut response = Response::new(String::new());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(self.code as u16));
        // Percent-encoded visible ASCII: always a valid header value.
        if let Ok(message) = HeaderValue::from_str(&percent_encode(&self.message)) {
            headers.insert("grpc-message", message);
        }
        if let Ok(details) = HeaderValue::from_str(&STANDARD_NO_PAD.encode(self.details())) {
            headers.insert("grpc-status-details-bin", details);
        }
        response
    }
}

/// gRPC's percent-encoding of `grpc-message`: every byte outside `0x20..=0x7E`, and `%`, as
/// `%XX`; spaces too, as tonic and grpc-go read them either way and a header keeps no
/// surrounding space.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte > b' ' && byte < 0x7f && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_varint(out, field << 3);
    put_varint(out, value);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_grpc_content_types_are_grpc() {
        for (value, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("Application/GRPC;charset=utf-8", true),
            ("application/grpc-web", false),
            ("application/grpcx", false),
            ("application/json", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_grpc_request(&headers), grpc, "{value}");
        }
        assert!(!is_grpc_request(&HeaderMap::new()));
    }

    #[test]
    fn details_are_a_google_rpc_status_with_error_info() {
        let status = GrpcStatus::new(GrpcCode::Unauthenticated, "m")
            .with_reason("R")
            .with_metadata("k", "v");
        let expected: Vec<u8> = [
            &[0x08, 16][..],  // code = 16
            &[0x12, 1, b'm'], // message = "m"
            &[0x1a, 63],      // details: one Any of 63 bytes
            &[0x0a, 40],      // type_url
            b"type.googleapis.com/google.rpc.ErrorInfo",
            &[0x12, 19],      // value: ErrorInfo of 19 bytes
            &[0x0a, 1, b'R'], // reason
            &[0x12, 6],       // domain
            b"stepup",
            &[0x1a, 6, 0x0a, 1, b'k', 0x12, 1, b'v'], // metadata {"k": "v"}
        ]
        .concat();
        assert_eq!(status.details(), expected);
        assert_eq!(percent_encode("a b%\u{e9}"), "a%20b%25%C3%A9");
    }
}

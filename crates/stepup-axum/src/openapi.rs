//! The OpenAPI 3.1 description of the drop-in routes ([`StepUp::openapi`]), built with `utoipa`:
//! every route with its method, its access rule (none, a bearer token, a fresh second factor),
//! an example body, and its answers — the RFC 9470 step-up challenge and the RFC 6750 bearer
//! challenge included, with their `WWW-Authenticate` header. A test holds it against the routes
//! the router really serves ([`StepUp::served_routes`]), both ways.
//!
//! ```
//! # fn example(stepup: stepup_axum::StepUp) -> Result<(), serde_json::Error> {
//! let document = stepup.openapi();
//! assert!(document.to_json()?.contains("\"/api/mfa/factors/{kind}\""));
//! # Ok(()) }
//! ```

use axum::http::Method;
use serde_json::{Value, json};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, ObjectBuilder, OpenApi,
    OpenApiBuilder, Paths, Ref, Required, Type,
};

use crate::stepup::StepUp;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone (the login steps, recovery).
    Public,
    /// A bearer token of stepup's.
    Bearer,
    /// A bearer token with a second factor recent enough (else the RFC 9470 challenge).
    FreshMfa,
}

/// One documented route.
struct Route {
    method: Method,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    access: Access,
    body: Option<Value>,
    form: bool,
    success: (&'static str, &'static str),
    /// The success answer's media type.
    answer: &'static str,
}

/// Every route of [`StepUp::routes`], as documented.
fn routes() -> Vec<Route> {
    use Access::{Bearer, FreshMfa, Public};
    let route = |method, path, tag, summary, access, body: Option<Value>, success| Route {
        method,
        path,
        tag,
        summary,
        access,
        body,
        form: false,
        success,
        answer: "application/json",
    };
    let code = json!({ "code": "123456" });
    let mut all = vec![
        route(
            Method::POST,
            "/oauth/authorize",
            "login",
            "A password (or a bearer token with acr_values=mfa): a token, a 302 with a code, or the MFA challenge",
            Public,
            Some(json!({ "username": "ada@example.com", "password": "correct horse" })),
            (
                "200",
                "a token at acr pwd, or {mfa_required, mfa_token, methods}; 302 with a pending authorization",
            ),
        ),
        route(
            Method::POST,
            "/oauth/authorize/mfa",
            "login",
            "The MFA step: the mfa_token and a second factor of the kind `method`",
            Public,
            Some(
                json!({ "mfa_token": "…", "method": "totp", "code": "123456", "remember_device": false }),
            ),
            (
                "200",
                "a token at the level the factor reached (mfa, or phr), or a 302 with a code",
            ),
        ),
        route(
            Method::POST,
            "/oauth/authorize/mfa/{kind}/prepare",
            "login",
            "The MFA step's challenge for a kind: a code sent (SMS, email), or WebAuthn request options",
            Public,
            Some(json!({ "mfa_token": "…" })),
            (
                "200",
                "{message} with the masked destination, or {publicKey}",
            ),
        ),
        route(
            Method::POST,
            "/oauth/authorize/mfa/webauthn/start",
            "login",
            "Alias of /oauth/authorize/mfa/webauthn/prepare",
            Public,
            Some(json!({ "mfa_token": "…" })),
            ("200", "{publicKey} request options"),
        ),
        route(
            Method::POST,
            "/oauth/authorize/mfa/sms/send",
            "login",
            "Alias of /oauth/authorize/mfa/sms/prepare",
            Public,
            Some(json!({ "mfa_token": "…" })),
            ("200", "{message: \"Code sent to +1*****6789\"}"),
        ),
        route(
            Method::POST,
            "/oauth/authorize/passkey/start",
            "login",
            "Passwordless login: request options for any passkey of this site",
            Public,
            None,
            ("200", "{publicKey, passkey_token}"),
        ),
        route(
            Method::POST,
            "/oauth/authorize/passkey",
            "login",
            "Passwordless login: the assertion, verified with user verification",
            Public,
            Some(json!({ "passkey_token": "…", "credential": {} })),
            ("200", "a token at acr phr, or a 302 with a code"),
        ),
        Route {
            form: true,
            ..route(
                Method::POST,
                "/oauth/token",
                "oauth",
                "The authorization-code grant with PKCE (S256)",
                Public,
                Some(json!({
                    "grant_type": "authorization_code",
                    "code": "…",
                    "code_verifier": "…",
                    "redirect_uri": "http://localhost:3000/callback",
                    "client_id": "demo"
                })),
                (
                    "200",
                    "{access_token, token_type, expires_in, acr, refresh_token?, scope?}; grant_type=refresh_token&refresh_token&client_id rotates the refresh token (a reuse revokes its family); with an external identity provider configured, grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token&subject_token_type=urn:ietf:params:oauth:token-type:access_token&acr_values=mfa answers {mfa_required, mfa_token, methods} (RFC 8693)",
                ),
            )
        },
        Route {
            answer: "text/html",
            ..route(
                Method::GET,
                "/oauth/authorize",
                "oauth",
                "The authorization endpoint (response_type=code, client_id, redirect_uri, code_challenge, S256, state, scope?, resource?, acr_values?, max_age?, prompt?): the sign-in page, or a 302 to redirect_uri with a code or an error and iss",
                Public,
                None,
                (
                    "200",
                    "the sign-in page (or 302 to the client's redirect_uri)",
                ),
            )
        },
        route(
            Method::POST,
            "/oauth/authorize/session",
            "oauth",
            "The sign-in page's step with its session cookie: a redirect, the missing factor, or a sign-in",
            Public,
            Some(json!({ "request_id": "…" })),
            (
                "200",
                "{redirect_to} | {mfa_required, mfa_token, methods} | {sign_in: true}",
            ),
        ),
        Route {
            answer: "text/javascript",
            ..route(
                Method::GET,
                "/oauth/assets/{name}",
                "oauth",
                "The sign-in page's script and style",
                Public,
                None,
                ("200", "authorize.js or authorize.css"),
            )
        },
        route(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            "oauth",
            "RFC 8414 authorization server metadata",
            Public,
            None,
            (
                "200",
                "{issuer, authorization_endpoint, token_endpoint, jwks_uri, registration_endpoint, revocation_endpoint, …}",
            ),
        ),
        route(
            Method::GET,
            "/.well-known/jwks.json",
            "oauth",
            "The token signing keys (RFC 7517; empty for HS256)",
            Public,
            None,
            ("200", "{keys}"),
        ),
        route(
            Method::POST,
            "/oauth/register",
            "oauth",
            "RFC 7591 dynamic registration of a public client",
            Public,
            Some(
                json!({ "redirect_uris": ["http://127.0.0.1:8976/callback"], "client_name": "My MCP client" }),
            ),
            (
                "201",
                "{client_id, client_id_issued_at, redirect_uris, grant_types, response_types, token_endpoint_auth_method: \"none\"}",
            ),
        ),
        Route {
            form: true,
            ..route(
                Method::POST,
                "/oauth/revoke",
                "oauth",
                "RFC 7009 revocation of a refresh token (its family ends)",
                Public,
                Some(json!({ "token": "…", "client_id": "…" })),
                ("200", "empty, also for an unknown token"),
            )
        },
        route(
            Method::POST,
            "/api/mfa/recovery/request",
            "recovery",
            "Mails a recovery code when the address belongs to an account (the same answer either way)",
            Public,
            Some(json!({ "email": "ada@example.com" })),
            ("202", "accepted"),
        ),
        route(
            Method::POST,
            "/api/mfa/recovery/confirm",
            "recovery",
            "The recovery code and the password: every factor reset, a token at pwd",
            Public,
            Some(json!({ "token": "…", "password": "correct horse" })),
            (
                "200",
                "a token at acr pwd (202 {status: pending, due_at} with a recovery delay)",
            ),
        ),
        route(
            Method::GET,
            "/api/mfa/factors",
            "factors",
            "The caller's factors: kind, id, label, status, restricted, a masked destination",
            Bearer,
            None,
            ("200", "{factors, backup_codes_remaining}"),
        ),
        route(
            Method::POST,
            "/api/mfa/factors/{kind}",
            "factors",
            "Starts enrolling a factor of a kind (the body is the kind's: {} for totp, {phone} for sms, {} or {email} for email)",
            Bearer,
            Some(json!({})),
            (
                "200",
                "the kind's answer: {secret, otpauth_uri, qr_code}, {message}, {publicKey, registration_token}",
            ),
        ),
        route(
            Method::POST,
            "/api/mfa/factors/{kind}/confirm",
            "factors",
            "Finishes an enrollment with its first proof ({code}, or {registration_token, credential, label?})",
            Bearer,
            Some(code.clone()),
            (
                "200",
                "{success, enabled, kind, credential_id, backup_codes}",
            ),
        ),
        route(
            Method::PATCH,
            "/api/mfa/factors/{kind}/{id}",
            "factors",
            "Renames a factor ({label}; null clears it)",
            Bearer,
            Some(json!({ "label": "my phone" })),
            ("200", "{success: true}"),
        ),
        route(
            Method::DELETE,
            "/api/mfa/factors/{kind}/{id}",
            "factors",
            "Removes a factor",
            FreshMfa,
            None,
            ("200", "{success: true}"),
        ),
        route(
            Method::POST,
            "/api/mfa/backup-codes/regenerate",
            "factors",
            "A new set of backup codes, shown once",
            FreshMfa,
            None,
            ("200", "{backup_codes}"),
        ),
        route(
            Method::POST,
            "/api/mfa/setup",
            "factors",
            "Alias: starts a TOTP enrollment",
            Bearer,
            None,
            ("200", "{secret, otpauth_uri, qr_code}"),
        ),
        route(
            Method::POST,
            "/api/mfa/verify-setup",
            "factors",
            "Alias: confirms the TOTP enrollment",
            Bearer,
            Some(code.clone()),
            ("200", "{success, enabled, backup_codes}"),
        ),
        route(
            Method::DELETE,
            "/api/mfa/totp",
            "factors",
            "Alias: removes the TOTP factor",
            FreshMfa,
            None,
            ("200", "{success: true}"),
        ),
        route(
            Method::POST,
            "/api/mfa/sms/enroll",
            "factors",
            "Alias: starts enrolling a phone number",
            Bearer,
            Some(json!({ "phone": "+15551236789" })),
            ("200", "{message, phone}"),
        ),
        route(
            Method::POST,
            "/api/mfa/sms/verify",
            "factors",
            "Alias: confirms the phone number",
            Bearer,
            Some(code),
            ("200", "{success, enabled, backup_codes}"),
        ),
        route(
            Method::DELETE,
            "/api/mfa/sms",
            "factors",
            "Alias: removes the SMS factor",
            FreshMfa,
            None,
            ("200", "{success: true}"),
        ),
        route(
            Method::POST,
            "/api/mfa/webauthn/register/start",
            "factors",
            "Alias: starts registering a passkey",
            Bearer,
            None,
            ("200", "{publicKey, registration_token}"),
        ),
        route(
            Method::POST,
            "/api/mfa/webauthn/register/finish",
            "factors",
            "Alias: finishes the registration",
            Bearer,
            Some(json!({ "registration_token": "…", "credential": {}, "label": "laptop" })),
            ("200", "{credential_id, backup_codes}"),
        ),
        route(
            Method::GET,
            "/api/mfa/webauthn/credentials",
            "factors",
            "Alias: the caller's passkeys",
            Bearer,
            None,
            ("200", "{credentials}"),
        ),
        route(
            Method::PATCH,
            "/api/mfa/webauthn/credentials/{id}",
            "factors",
            "Alias: renames a passkey",
            Bearer,
            Some(json!({ "label": "laptop" })),
            ("200", "{success: true}"),
        ),
        route(
            Method::DELETE,
            "/api/mfa/webauthn/credentials/{id}",
            "factors",
            "Alias: removes a passkey",
            FreshMfa,
            None,
            ("200", "{success: true}"),
        ),
        route(
            Method::GET,
            "/api/mfa/devices",
            "devices",
            "The caller's remembered devices, the current one marked",
            Bearer,
            None,
            ("200", "{devices}"),
        ),
        route(
            Method::DELETE,
            "/api/mfa/devices",
            "devices",
            "Revokes every remembered device",
            Bearer,
            None,
            ("200", "{success, revoked}"),
        ),
        route(
            Method::DELETE,
            "/api/mfa/devices/{id}",
            "devices",
            "Revokes one remembered device",
            Bearer,
            None,
            ("200", "{success: true}"),
        ),
        route(
            Method::GET,
            "/api/mfa/events",
            "audit",
            "The caller's audit trail, oldest first",
            Bearer,
            None,
            ("200", "{events}"),
        ),
    ];
    all.sort_by_key(|route| route.path);
    all
}

impl StepUp {
    /// The OpenAPI 3.1 description of [`routes`](Self::routes). Serve it as JSON (e.g. at
    /// `GET /openapi.json`).
    pub fn openapi(&self) -> OpenApi {
        let mut paths = Paths::new();
        for route in routes() {
            paths.add_path_operation(
                route.path,
                vec![http_method(&route.method)],
                operation(&route),
            );
        }
        OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title("stepup")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some(
                        "Multi-factor and step-up authentication: the login with its MFA step, \
                         the OAuth authorization-code flow, and factor management. Errors are \
                         {\"error\", \"error_description\"} JSON.",
                    ))
                    .build(),
            )
            .paths(paths)
            .components(Some(components()))
            .build()
    }

    /// Every `(method, path)` [`routes`](Self::routes) serves, as the router was built (paths
    /// in axum's `{parameter}` syntax, which OpenAPI shares).
    pub fn served_routes(&self) -> Vec<(Method, &'static str)> {
        crate::router::served(self)
    }
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::PUT => HttpMethod::Put,
        Method::HEAD => HttpMethod::Head,
        _ => HttpMethod::Options,
    }
}

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let mut operation = OperationBuilder::new()
        .tag(route.tag)
        .summary(Some(route.summary))
        .operation_id(Some(format!(
            "{} {}",
            route.method.as_str().to_lowercase(),
            route.path
        )))
        .response(
            route.success.0,
            ResponseBuilder::new()
                .description(route.success.1)
                .content(route.answer, ContentBuilder::new().build()),
        )
        .response("400", Ref::from_response_name("BadRequest"))
        .response("429", Ref::from_response_name("TooManyRequests"))
        .response("503", Ref::from_response_name("Unavailable"));
    for segment in route.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
    }
    if let Some(body) = &route.body {
        let content_type = if route.form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        operation = operation.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    content_type,
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                        .example(Some(body.clone()))
                        .build(),
                )
                .build(),
        ));
    }
    match route.access {
        Access::Public => {}
        Access::Bearer => {
            operation = operation
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .response("401", Ref::from_response_name("BearerRequired"));
        }
        Access::FreshMfa => {
            operation = operation
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .response("401", Ref::from_response_name("StepUpRequired"));
        }
    }
    operation.build()
}

fn components() -> utoipa::openapi::Components {
    let error = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("error", ObjectBuilder::new().schema_type(Type::String))
        .property(
            "error_description",
            ObjectBuilder::new().schema_type(Type::String),
        )
        .required("error")
        .build();
    let json_error = |description: &str, example: Value| {
        ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .example(Some(example))
                .build(),
        )
    };
    let challenge = |description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    ComponentsBuilder::new()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        )
        .schema("Error", error)
        .response(
            "BadRequest",
            json_error(
                "bad input: the field is named from the server's own schema",
                json!({ "error": "invalid_request", "error_description": "missing field code" }),
            )
            .build(),
        )
        .response(
            "BearerRequired",
            json_error(
                "no token, or not a valid one (RFC 6750)",
                json!({ "error": "invalid_token", "error_description": "the token has expired" }),
            )
            .header("WWW-Authenticate", challenge("`Bearer`, or `Bearer error=\"invalid_token\", …`"))
            .build(),
        )
        .response(
            "StepUpRequired",
            json_error(
                "a stronger or fresher authentication is required (RFC 9470)",
                json!({
                    "error": "insufficient_user_authentication",
                    "error_description": "a stronger authentication level is required",
                    "acr_values": "mfa",
                    "max_age": 300
                }),
            )
            .header(
                "WWW-Authenticate",
                challenge(
                    "`Bearer error=\"insufficient_user_authentication\", error_description=\"…\", acr_values=\"mfa\", max_age=300`",
                ),
            )
            .build(),
        )
        .response(
            "TooManyRequests",
            json_error(
                "too many attempts: wait Retry-After seconds",
                json!({ "error": "too_many_requests", "error_description": "too many attempts; retry later" }),
            )
            .header("Retry-After", challenge("seconds to wait"))
            .build(),
        )
        .response(
            "Unavailable",
            json_error(
                "a store or provider cannot answer: stepup fails closed",
                json!({
                    "error": stepup_core::error_body::UNAVAILABLE_CODE,
                    "error_description": stepup_core::error_body::UNAVAILABLE_DESCRIPTION
                }),
            )
            .build(),
        )
        .build()
}

//! `GET /openapi.json`: stepup's routes as [`StepUp::openapi`] describes them, and the demo's own
//! beside them, with the same error answers (stepup's components).

use serde_json::json;
use stepup::StepUp;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, OpenApi, Ref, Required, Type};

/// Who may call one of the demo's routes.
#[derive(Clone, Copy)]
enum Access {
    Public,
    /// A bearer token; 401 with the RFC 6750 challenge without one.
    Bearer,
    /// A bearer token and a recent enough (or strong enough) login; else the RFC 9470 challenge.
    StepUp,
}

/// The whole demo, described.
pub(crate) fn document(stepup: &StepUp) -> OpenApi {
    use Access::{Bearer, Public, StepUp as Fresh};
    let mut document = stepup.openapi();
    let own = [
        (
            HttpMethod::Post,
            "/api/register",
            "Creates a user: {username, password}",
            Public,
            "201",
        ),
        (
            HttpMethod::Get,
            "/api/me",
            "The caller's id, acr, amr and auth_time",
            Bearer,
            "200",
        ),
        (
            HttpMethod::Delete,
            "/api/account",
            "Deletes the caller (a second factor of the last 5 minutes)",
            Fresh,
            "200",
        ),
        (
            HttpMethod::Get,
            "/api/vault",
            "A secret behind a passkey login of the last 5 minutes (acr phr)",
            Fresh,
            "200",
        ),
        (
            HttpMethod::Post,
            "/api/admin/users/{user}/mfa/reset",
            "An administrator resets a user's factors (acr phr, last 5 minutes)",
            Fresh,
            "200",
        ),
        (
            HttpMethod::Post,
            "/api/transfers",
            "Sends {amount, currency, payee} once approved: a 401 names a transaction_id and the operation; POST /oauth/authorize {transaction_id} with the token, then the MFA step, gives a transaction_grant for the Stepup-Transaction header of the retried request (single use, this amount and payee only)",
            Fresh,
            "200",
        ),
        (
            HttpMethod::Get,
            "/healthz",
            "200 while every store answers, 503 otherwise",
            Public,
            "200",
        ),
        (
            HttpMethod::Get,
            "/callback",
            "The OAuth redirect target: shows the code it received",
            Public,
            "200",
        ),
        (
            HttpMethod::Get,
            "/openapi.json",
            "This document",
            Public,
            "200",
        ),
    ];
    for (method, path, summary, access, success) in own {
        let mut operation = OperationBuilder::new()
            .tag("demo")
            .summary(Some(summary))
            .response(
                success,
                ResponseBuilder::new()
                    .description(summary)
                    .content("application/json", ContentBuilder::new().build()),
            )
            .response("400", Ref::from_response_name("BadRequest"));
        if path.contains("{user}") {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name("user")
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        if path == "/api/register" {
            operation = operation
                .request_body(Some(
                    utoipa::openapi::request_body::RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .example(Some(json!({ "username": "ada@example.com", "password": "correct horse battery" })))
                                .build(),
                        )
                        .build(),
                ))
                .response("429", Ref::from_response_name("TooManyRequests"));
        }
        operation = match access {
            Access::Public => operation,
            Access::Bearer => operation
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .response("401", Ref::from_response_name("BearerRequired")),
            Access::StepUp => operation
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .response("401", Ref::from_response_name("StepUpRequired")),
        };
        document
            .paths
            .add_path_operation(path, vec![method], operation.build());
    }
    document
}

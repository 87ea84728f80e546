//! The MCP server's application: its settings, the verifier that trusts the authorization
//! server's published keys, the tools, and the router. `main.rs` reads the settings from the
//! environment; `tests/mcp_server.rs` builds them against a demo of its own.
//!
//! Step-up is decided per tool, at the HTTP layer: an MCP client learns that it must
//! re-authenticate from an HTTP `401` with the RFC 9470 challenge (a JSON-RPC error inside a
//! `200` would tell it nothing), so [`gate_tools`] reads the JSON-RPC message, finds the tool
//! a `tools/call` names, and runs the request through that tool's [`RequireAcr`]. Each tool
//! checks the same requirement again on the caller it is handed: a message the gate misread
//! still cannot reach a tool without the level the tool needs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use stepup::clock::SharedClock;
use stepup::resource::{ProtectedResourceMetadata, ResourceMetadataService};
use stepup::token::JwtVerifier;
use stepup::{AuthContext, RequireAcr, RequireMfa, authenticate};
use tower::{Layer, ServiceExt};

/// The address served when `MCP_ADDR` is not set.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:3002";
/// The authorization server when `STEPUP_ISSUER` is not set: the demo, as `cargo run --example
/// demo` serves it.
pub(crate) const DEFAULT_ISSUER: &str = "http://localhost:3000";
/// The largest JSON-RPC message read (the gate reads it whole to find the tool).
const MAX_MESSAGE: usize = 1024 * 1024;
/// How recent the second factor must be to delete the account.
pub(crate) const DELETE_ACCOUNT_MAX_AGE: Duration = Duration::from_secs(300);

/// The settings, read from the environment by `main.rs`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The authorization server's issuer identifier (its RFC 8414 `issuer`).
    pub(crate) issuer: String,
    /// The address to listen on.
    pub(crate) addr: SocketAddr,
    /// The MCP endpoint's URL: the resource identifier clients ask tokens for (RFC 8707) and
    /// the tokens' audience.
    pub(crate) resource: String,
}

impl Settings {
    /// The settings from `lookup` (the environment in `main.rs`); the error says what is wrong.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let lookup = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let issuer = lookup("STEPUP_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        let addr = lookup("MCP_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("MCP_ADDR is not an address: {addr}"))?;
        let public = lookup("MCP_PUBLIC_URL").unwrap_or_else(|| format!("http://{addr}"));
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            addr,
            resource: format!("{}/mcp", public.trim_end_matches('/')),
        })
    }

    /// The RFC 9728 metadata: this MCP endpoint, and the authorization server that signs in.
    pub(crate) fn metadata(&self) -> Result<ProtectedResourceMetadata, stepup::Error> {
        Ok(ProtectedResourceMetadata::new(&self.resource)?
            .with_authorization_server(&self.issuer)
            .with_resource_name("stepup MCP server example"))
    }

    /// A verifier of the authorization server's tokens for this resource: its keys from its
    /// published JWKS, kept fresh in the background. Must be built inside a tokio runtime.
    pub(crate) fn verifier(&self, clock: SharedClock) -> Result<JwtVerifier, stepup::Error> {
        JwtVerifier::builder()
            .issuer(&self.issuer)
            .audience(&self.resource)
            .jwks_url(format!("{}/.well-known/jwks.json", self.issuer))
            .clock(clock)
            .build()
    }

    /// The `Host` values the MCP transport accepts (it refuses others, against DNS rebinding).
    fn allowed_hosts(&self) -> Vec<String> {
        let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        if let Ok(url) = url::Url::parse(&self.resource)
            && let Some(host) = url.host_str()
        {
            hosts.push(host.to_owned());
            if let Some(port) = url.port() {
                hosts.push(format!("{host}:{port}"));
            }
        }
        hosts
    }
}

/// The level every MCP request needs: any sign-in the authorization server completed.
const SIGNED_IN: &str = "pwd";

/// What each tool requires beyond a valid token; tools not named here need only that.
pub(crate) fn requirement_of(tool: &str) -> Option<RequireAcr> {
    match tool {
        "delete_account" => Some(RequireMfa.max_age(DELETE_ACCOUNT_MAX_AGE)),
        "read_vault" => Some(RequireAcr::level("phr")),
        _ => None,
    }
}

/// The MCP endpoint at `/mcp` behind `authenticate()`, a signed-in caller and the tool gate, and its RFC 9728
/// metadata beside it.
pub(crate) fn router(
    settings: &Settings,
    verifier: JwtVerifier,
    metadata: &ProtectedResourceMetadata,
) -> Router {
    let accounts = Accounts::default();
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(settings.allowed_hosts())
        .with_max_request_body_bytes(MAX_MESSAGE);
    let mcp: StreamableHttpService<Tools, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(Tools::new(accounts.clone())),
        LocalSessionManager::default().into(),
        config,
    );
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn(gate_tools))
        // Every MCP message needs a signed-in caller; the gate asks more of some tools.
        .layer(RequireAcr::level(SIGNED_IN))
        .layer(authenticate(verifier).with_resource_metadata(metadata.metadata_url()))
        .route_service(
            &metadata.well_known_path(),
            ResourceMetadataService::new(metadata),
        )
}

/// Middleware: a `tools/call` of a tool with a [`requirement_of`] goes through that
/// requirement (the RFC 9470 challenge when the caller falls short); everything else passes.
async fn gate_tools(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_MESSAGE).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "a JSON-RPC message is at most 1 MiB",
        );
    };
    let gated = match called_tools(&bytes) {
        Ok(tools) => tools
            .iter()
            .filter_map(|tool| requirement_of(tool))
            .collect::<Vec<_>>(),
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match gated.as_slice() {
        [] => next.run(request).await,
        [requirement] => {
            let next = tower::service_fn(move |request| {
                let next = next.clone();
                async move { Ok::<_, Infallible>(next.run(request).await) }
            });
            match requirement.layer(next).oneshot(request).await {
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            }
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "a batch may call at most one tool that needs a step-up",
        ),
    }
}

/// The tools a JSON-RPC message (one request, or a batch) calls. A message that is not JSON
/// passes as none (the MCP transport answers it); a `tools/call` without a tool name is refused.
fn called_tools(message: &[u8]) -> Result<Vec<String>, &'static str> {
    let Ok(value) = serde_json::from_slice::<Value>(message) else {
        return Ok(Vec::new());
    };
    let calls = match value {
        Value::Array(calls) => calls,
        call => vec![call],
    };
    calls
        .iter()
        .filter(|call| call["method"] == "tools/call")
        .map(|call| {
            call["params"]["name"]
                .as_str()
                .map(str::to_owned)
                .ok_or("a tools/call names its tool in params.name")
        })
        .collect()
}

fn error(status: StatusCode, description: &str) -> Response {
    let body = json!({ "error": "invalid_request", "error_description": description });
    (status, axum::Json(body)).into_response()
}

/// What this server keeps per user: the vault's content, and whether the account was deleted.
#[derive(Clone, Default)]
pub(crate) struct Accounts(Arc<Mutex<HashMap<String, Account>>>);

#[derive(Clone)]
struct Account {
    vault: String,
    deleted: bool,
}

impl Accounts {
    fn with<T>(&self, user: &str, act: impl FnOnce(&mut Account) -> T) -> T {
        let mut accounts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let account = accounts.entry(user.to_owned()).or_insert_with(|| Account {
            vault: format!("the vault of {user}: 42 gold coins"),
            deleted: false,
        });
        act(account)
    }
}

/// The MCP tools. Each reads the caller that `authenticate()` put on the HTTP request.
#[derive(Clone)]
pub(crate) struct Tools {
    accounts: Accounts,
    tool_router: ToolRouter<Tools>,
}

#[tool_router]
impl Tools {
    fn new(accounts: Accounts) -> Self {
        Self {
            accounts,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Who you are signed in as, and how: acr, amr, auth_time")]
    async fn whoami(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, McpError> {
        let caller = caller(&parts, "whoami")?;
        json_result(json!({
            "sub": caller.subject(),
            "acr": caller.acr(),
            "amr": caller.amr(),
            "auth_time": caller.auth_time(),
        }))
    }

    #[tool(
        description = "Deletes your account on this server (a second factor of the last 5 minutes)"
    )]
    async fn delete_account(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, McpError> {
        let caller = caller(&parts, "delete_account")?;
        let deleted = self.accounts.with(caller.subject(), |account| {
            !std::mem::replace(&mut account.deleted, true)
        });
        tracing::info!(sub = caller.subject(), deleted, "account deletion");
        json_result(json!({ "deleted": deleted }))
    }

    #[tool(description = "Reads your vault (a phishing-resistant login: a passkey)")]
    async fn read_vault(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, McpError> {
        let caller = caller(&parts, "read_vault")?;
        let vault = self.accounts.with(caller.subject(), |account| {
            (!account.deleted).then(|| account.vault.clone())
        });
        json_result(json!({ "vault": vault }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::from_build_env())
            .with_instructions(
                "whoami for anyone signed in; delete_account needs a second factor of the last \
                 5 minutes, read_vault a passkey login: the server answers 401 with the RFC 9470 \
                 challenge, and a new authorization with its acr_values and max_age meets it."
                    .to_owned(),
            )
    }
}

/// The caller of `tool`, meeting the tool's requirement (checked again here: see the module
/// docs).
pub(crate) fn caller<'a>(
    parts: &'a axum::http::request::Parts,
    tool: &str,
) -> Result<&'a AuthContext, McpError> {
    let caller = parts
        .extensions
        .get::<AuthContext>()
        .ok_or_else(|| McpError::invalid_request("not signed in", None))?;
    if let Some(requirement) = requirement_of(tool) {
        requirement
            .requirement()
            .check(caller)
            .map_err(|challenge| {
                McpError::invalid_request(
                    format!("step-up required: acr_values={}", challenge.acr_values),
                    None,
                )
            })?;
    }
    Ok(caller)
}

fn json_result(value: Value) -> Result<CallToolResult, McpError> {
    Ok(CallToolResult::success(vec![ContentBlock::text(
        value.to_string(),
    )]))
}

//! OAuth 2.0 protected-resource metadata (RFC 9728): the document a resource server publishes at
//! `/.well-known/oauth-protected-resource` so that a client which only holds the resource's URL
//! (an MCP client, say) finds the authorization servers that issue tokens for it, and the
//! [`ResourceMetadataUrl`] its challenges name.
//!
//! The document is framework-free; `stepup_tower::resource_metadata` serves it.
//!
//! ```
//! use stepup_core::resource::ProtectedResourceMetadata;
//!
//! let metadata = ProtectedResourceMetadata::new("https://api.example.com/mcp")?
//!     .with_authorization_server("https://auth.example.com")
//!     .with_scopes_supported(["vault:read", "vault:write"]);
//! assert_eq!(metadata.well_known_path(), "/.well-known/oauth-protected-resource/mcp");
//! assert_eq!(
//!     metadata.metadata_url().as_str(),
//!     "https://api.example.com/.well-known/oauth-protected-resource/mcp"
//! );
//! assert_eq!(
//!     metadata.to_json(),
//!     r#"{"resource":"https://api.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["vault:read","vault:write"],"bearer_methods_supported":["header"]}"#
//! );
//! # Ok::<(), stepup_core::Error>(())
//! ```

use serde::Serialize;

use crate::Error;
pub use crate::www_authenticate::ResourceMetadataUrl;

/// The well-known path of the metadata of a resource whose identifier has no path (RFC 9728
/// §3); a resource `https://host/api` publishes at this path followed by `/api`.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The RFC 9728 metadata of one protected resource; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtectedResourceMetadata {
    resource: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    bearer_methods_supported: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<String>,
}

impl ProtectedResourceMetadata {
    /// The metadata of the resource identified by `resource`: an `https` URL (plain `http` only
    /// to a loopback host, for development) without query or fragment, the value the resource's
    /// tokens carry as `aud` when the authorization server follows RFC 8707.
    ///
    /// `bearer_methods_supported` is `["header"]`: stepup reads tokens from the
    /// `Authorization` header only.
    pub fn new(resource: impl Into<String>) -> Result<Self, Error> {
        let resource = resource.into();
        crate::www_authenticate::check_url(&resource)?;
        if resource.contains('?') {
            return Err(Error::Config("a resource identifier has no query"));
        }
        Ok(Self {
            resource,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: ["header"],
            resource_name: None,
            resource_documentation: None,
        })
    }

    /// Adds an authorization server, by its issuer identifier (where its RFC 8414 or OpenID
    /// Connect discovery document is found).
    pub fn with_authorization_server(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        if !self.authorization_servers.contains(&issuer) {
            self.authorization_servers.push(issuer);
        }
        self
    }

    /// Adds scopes to `scopes_supported` (those a client may ask for to use this resource).
    pub fn with_scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for scope in scopes {
            let scope = scope.into();
            if !self.scopes_supported.contains(&scope) {
                self.scopes_supported.push(scope);
            }
        }
        self
    }

    /// Sets `resource_name`, a name for people.
    pub fn with_resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Sets `resource_documentation`, the URL of documentation for developers.
    pub fn with_resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The authorization servers' issuer identifiers.
    pub fn authorization_servers(&self) -> &[String] {
        &self.authorization_servers
    }

    /// The scopes a client may ask for.
    pub fn scopes_supported(&self) -> &[String] {
        &self.scopes_supported
    }

    /// The path at which the document is served: [`WELL_KNOWN_PATH`], followed by the resource
    /// identifier's path when it has one (RFC 9728 §3.1).
    pub fn well_known_path(&self) -> String {
        let (_, path) = self.split();
        let path = path.trim_end_matches('/');
        format!("{WELL_KNOWN_PATH}{path}")
    }

    /// The document's URL, for the `resource_metadata` parameter of every challenge (give it
    /// to `authenticate(…).with_resource_metadata(…)`).
    pub fn metadata_url(&self) -> ResourceMetadataUrl {
        let (origin, _) = self.split();
        ResourceMetadataUrl::new(format!("{origin}{}", self.well_known_path()))
            .expect("built from a checked resource identifier")
    }

    /// The document as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the metadata serializes")
    }

    /// The identifier split into its origin (`https://host:port`) and its path (maybe empty).
    fn split(&self) -> (&str, &str) {
        let after_scheme = self.resource.find("://").map_or(0, |at| at + 3);
        match self.resource[after_scheme..].find('/') {
            Some(at) => self.resource.split_at(after_scheme + at),
            None => (&self.resource, ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_path_follows_the_resource_path() {
        for (resource, path, url) in [
            (
                "https://api.example.com",
                "/.well-known/oauth-protected-resource",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com/",
                "/.well-known/oauth-protected-resource",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com:8443/v1/mcp",
                "/.well-known/oauth-protected-resource/v1/mcp",
                "https://api.example.com:8443/.well-known/oauth-protected-resource/v1/mcp",
            ),
            (
                "http://127.0.0.1:3001",
                "/.well-known/oauth-protected-resource",
                "http://127.0.0.1:3001/.well-known/oauth-protected-resource",
            ),
        ] {
            let metadata = ProtectedResourceMetadata::new(resource).unwrap();
            assert_eq!(metadata.well_known_path(), path, "{resource}");
            assert_eq!(metadata.metadata_url().as_str(), url, "{resource}");
        }
    }

    #[test]
    fn only_https_or_loopback_http_identifiers_are_accepted() {
        for good in [
            "https://api.example.com",
            "http://localhost:3001",
            "http://127.0.0.1",
            "http://[::1]:8080/api",
        ] {
            assert!(ProtectedResourceMetadata::new(good).is_ok(), "{good}");
        }
        for bad in [
            "http://api.example.com",
            "http://127.0.0.1.example.com",
            "ftp://api.example.com",
            "api.example.com",
            "https://",
            "https://user@api.example.com",
            "https://api.example.com/#top",
            "https://api.example.com/?q=1",
            "https://api.example.com/\"x",
            "https://api.example.com/a b",
        ] {
            assert!(ProtectedResourceMetadata::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_document_has_the_optional_fields_when_set() {
        let metadata = ProtectedResourceMetadata::new("https://api.example.com")
            .unwrap()
            .with_authorization_server("https://a.example.com")
            .with_authorization_server("https://a.example.com")
            .with_resource_name("Vault")
            .with_resource_documentation("https://docs.example.com/api");
        let json: serde_json::Value = serde_json::from_str(&metadata.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "resource": "https://api.example.com",
                "authorization_servers": ["https://a.example.com"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Vault",
                "resource_documentation": "https://docs.example.com/api",
            })
        );
    }
}

//! [`OAuthClient`]: a client registered for the authorization-code flow.

/// A registered OAuth client: its id and the redirect URIs it may use, matched exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub(crate) id: String,
    pub(crate) redirect_uris: Vec<String>,
}

impl OAuthClient {
    /// A public client (no secret: PKCE protects its codes).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            redirect_uris: Vec::new(),
        }
    }

    /// Allows `uri` as a redirect URI (compared byte for byte).
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }
}

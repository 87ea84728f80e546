//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an `https` URL names a JSON document describing the client. The engine fetches it
//! with a bounded HTTP client (timeouts, a size limit, no redirects, rustls), refuses addresses
//! that are not globally routable (unless loopback `http` is allowed for development), checks
//! that the document's `client_id` is the URL and its redirect URIs follow the registration
//! rules, and caches the answer (and, briefly, a failure).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;
use url::{Host, Url};

use crate::clients::{
    Client, ClientSource, MetadataDocumentPolicy, check_metadata, is_loopback_host,
};
use crate::error::MfaError;

/// How long a failed fetch is remembered (a flood of one bad id fetches it once per this).
const FAILURE_CACHE: Duration = Duration::from_secs(30);
/// The most documents cached.
const CACHE_CAPACITY: usize = 1024;

/// Client id → until when the answer holds, and the answer (`None`: refused).
type Cache = HashMap<String, (Instant, Option<Client>)>;

/// The fetcher and its cache. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Documents {
    http: reqwest::Client,
    policy: MetadataDocumentPolicy,
    cache: Arc<Mutex<Cache>>,
}

impl Documents {
    pub(crate) fn new(policy: MetadataDocumentPolicy) -> Result<Self, MfaError> {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GlobalOnly {
                allow_loopback: policy.allow_loopback_http,
            }))
            .user_agent("stepup (client metadata)")
            .build()
            .map_err(MfaError::internal)?;
        Ok(Self {
            http,
            policy,
            cache: Arc::default(),
        })
    }

    /// The client the document at `client_id` describes; `None` when the URL is not a valid
    /// client id or the document cannot be had or is not valid (both cached briefly).
    pub(crate) async fn client(&self, client_id: &str) -> Result<Option<Client>, MfaError> {
        let Some(url) = self.client_id_url(client_id) else {
            return Ok(None);
        };
        let now = Instant::now();
        if let Some((until, client)) = self.lock().get(client_id)
            && *until > now
        {
            return Ok(client.clone());
        }
        let fetched = self.fetch(url, client_id).await;
        let ttl = if fetched.is_some() {
            self.policy.cache_for
        } else {
            FAILURE_CACHE
        };
        let mut cache = self.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(client_id.to_owned(), (now + ttl, fetched.clone()));
        Ok(fetched)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The URL of a well-formed client id: `https` (or loopback `http` when allowed), with a
    /// path, without a fragment, user information or dot segments.
    fn client_id_url(&self, client_id: &str) -> Option<Url> {
        let url = Url::parse(client_id).ok()?;
        // The URL must be the id exactly as given: no normalisation hides a different one.
        if url.as_str() != client_id {
            return None;
        }
        let scheme_ok = match url.scheme() {
            "https" => {
                matches!(url.host(), Some(Host::Domain(_)))
                    || (self.policy.allow_loopback_http && is_loopback_host(url.host()))
            }
            "http" => self.policy.allow_loopback_http && is_loopback_host(url.host()),
            _ => false,
        };
        let path_ok = url.path() != "/"
            && !url
                .path()
                .split('/')
                .any(|segment| segment == "." || segment == "..");
        (scheme_ok
            && path_ok
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none())
        .then_some(url)
    }

    async fn fetch(&self, url: Url, client_id: &str) -> Option<Client> {
        let outcome = async {
            let mut response = self
                .http
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.ok()? {
                if body.len() + chunk.len() > self.policy.max_bytes {
                    return None;
                }
                body.extend_from_slice(&chunk);
            }
            let document: Value = serde_json::from_slice(&body).ok()?;
            if document.get("client_id").and_then(Value::as_str) != Some(client_id) {
                return None;
            }
            let metadata = check_metadata(&document).ok()?;
            Some(metadata.client(client_id.to_owned(), ClientSource::MetadataDocument))
        }
        .await;
        if outcome.is_none() {
            tracing::info!(target: "stepup::audit", "a client metadata document was refused");
        }
        outcome
    }
}

/// Resolves names to globally routable addresses only (and loopback ones for development): a
/// client id cannot make the server fetch from its own network.
struct GlobalOnly {
    allow_loopback: bool,
}

impl Resolve for GlobalOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = format!("{}:0", name.as_str());
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host(host)
                .await?
                .filter(|address| is_allowed(address.ip(), allow_loopback))
                .collect();
            if addresses.is_empty() {
                return Err("no routable address".into());
            }
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether the fetcher may connect to `ip`.
pub(crate) fn is_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || v4.octets()[0] == 0
                || (v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| !is_allowed(IpAddr::V4(v4), allow_loopback)))
        }
    }
}

impl crate::Mfa {
    /// Accepts Client ID Metadata Documents as client ids under `policy` (feature
    /// `client-metadata`).
    pub fn with_client_metadata_documents(
        self,
        policy: MetadataDocumentPolicy,
    ) -> Result<Self, MfaError> {
        let documents = Documents::new(policy)?;
        Ok(self.map(|inner| inner.clients.documents = Some(documents)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_globally_routable_addresses_are_fetched_from() {
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
        ] {
            assert!(!is_allowed(ip.parse().unwrap(), true), "{ip}");
        }
        assert!(!is_allowed("127.0.0.1".parse().unwrap(), false));
        assert!(is_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(is_allowed("93.184.216.34".parse().unwrap(), false));
        assert!(is_allowed("2606:2800:220:1::1".parse().unwrap(), false));
    }

    #[test]
    fn client_ids_must_be_plain_https_urls_with_a_path() {
        let documents = Documents::new(MetadataDocumentPolicy::default()).unwrap();
        for bad in [
            "https://app.example",
            "https://app.example/",
            "http://app.example/client.json",
            "https://app.example/a/../client.json",
            "https://user@app.example/client.json",
            "https://app.example/client.json#x",
            "https://127.0.0.1/client.json",
            "https://APP.example/client.json",
        ] {
            assert!(documents.client_id_url(bad).is_none(), "{bad}");
        }
        assert!(
            documents
                .client_id_url("https://app.example/client.json")
                .is_some()
        );
        assert!(
            documents
                .client_id_url("http://127.0.0.1:8080/client.json")
                .is_none()
        );
        let development = Documents::new(MetadataDocumentPolicy::development()).unwrap();
        assert!(
            development
                .client_id_url("http://127.0.0.1:8080/client.json")
                .is_some()
        );
        assert!(
            development
                .client_id_url("http://localhost:8080/client.json")
                .is_some()
        );
    }
}

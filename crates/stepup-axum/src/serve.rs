//! An HTTP/1.1 server for an axum [`Router`] that a slow client cannot take down: the drop-in
//! replacement of `axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())`.
//!
//! A slowloris client opens many connections and sends each request's headers a byte at a time,
//! or never finishes them; a server that waits forever runs out of file descriptors and stops
//! answering everyone. [`serve`] bounds that:
//!
//! - **a header-read timeout**: a connection that has not sent a whole request head within
//!   [`ServeLimits::with_header_read_timeout`] (default 10 s) of its start, or of the end of its
//!   previous response, is closed, however slowly it keeps sending;
//! - **a per-address cap**: at most [`ServeLimits::with_max_connections_per_address`] (default
//!   64) open connections from one client address, IPv6 grouped by its /64 network
//!   ([`ServeLimits::with_ipv6_prefix`]), since one client usually holds a whole /64; a connection
//!   over the cap is closed at once, before a byte is read;
//! - **a total cap**: at most [`ServeLimits::with_max_connections`] open connections (default:
//!   three quarters of the process's open-file limit, at most 10,000), so the server never runs
//!   out of descriptors for its database and its listener.
//!
//! The router sees the peer address as [`ConnectInfo<SocketAddr>`](ConnectInfo), as with
//! `into_make_service_with_connect_info`, so the per-address rate limits keep working.
//! [`Serve::with_graceful_shutdown`] stops accepting when a signal fires, lets requests in
//! progress finish, and closes idle connections.
//!
//! ```
//! # async fn example() -> std::io::Result<()> {
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use axum::{Router, extract::ConnectInfo, routing::get};
//! use stepup_axum::serve::{ServeLimits, serve};
//!
//! let router = Router::new().route(
//!     "/whoami",
//!     get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let limits = ServeLimits::default()
//!     .with_header_read_timeout(Duration::from_secs(5))
//!     .with_max_connections_per_address(32);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(
//!     serve(listener, router, limits)
//!         .with_graceful_shutdown(async move {
//!             let _ = stopped.await;
//!         })
//!         .into_future(),
//! );
//! stop.send(()).ok();
//! server.await.expect("the server task")?;
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(example()).unwrap();
//! ```

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service;

/// The most connections [`ServeLimits::default`] allows in total.
const MAX_DEFAULT_CONNECTIONS: usize = 10_000;
/// The wait after an accept error that is not one connection's (out of descriptors, say).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// How long a client may take to send a request head, and how many connections may be open:
/// the limits of [`serve`].
///
/// ```
/// use std::time::Duration;
/// use stepup_axum::serve::ServeLimits;
///
/// let limits = ServeLimits::default()
///     .with_header_read_timeout(Duration::from_secs(5))
///     .with_max_connections_per_address(16)
///     .with_max_connections(2_000)
///     .with_ipv6_prefix(56);
/// assert_eq!(limits.max_connections_per_address(), 16);
/// assert_eq!(ServeLimits::default().header_read_timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    header_read_timeout: Duration,
    per_address: usize,
    total: usize,
    ipv6_prefix: u8,
}

impl Default for ServeLimits {
    /// A 10-second header-read timeout, 64 connections per address (IPv6 per /64), and in total
    /// three quarters of the process's open-file limit, at most 10,000.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            per_address: 64,
            total: default_max_connections(),
            ipv6_prefix: 64,
        }
    }
}

impl ServeLimits {
    /// The defaults (see [`Default`](#impl-Default-for-ServeLimits)).
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection that has not sent a whole request head within `timeout` of its start (or of
    /// the end of its previous response, when kept alive) is closed. At least 1 ms.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// At most `connections` (at least 1) open connections from one client address; one more is
    /// closed at once.
    pub fn with_max_connections_per_address(mut self, connections: usize) -> Self {
        self.per_address = connections.max(1);
        self
    }

    /// At most `connections` (at least 1) open connections in all; one more is closed at once.
    /// Keep it below the process's open-file limit (`ulimit -n`), less what the application
    /// needs besides.
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.total = connections.max(1);
        self
    }

    /// IPv6 clients are counted per network of this prefix length (default 64, at most 128).
    pub fn with_ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits.min(128);
        self
    }

    /// The header-read timeout.
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// The cap on connections from one address (or IPv6 network).
    pub fn max_connections_per_address(&self) -> usize {
        self.per_address
    }

    /// The cap on connections in all.
    pub fn max_connections(&self) -> usize {
        self.total
    }

    /// The prefix length IPv6 addresses are grouped by.
    pub fn ipv6_prefix(&self) -> u8 {
        self.ipv6_prefix
    }
}

/// Three quarters of the soft open-file limit, at most 10,000 (1,024 where it cannot be read).
fn default_max_connections() -> usize {
    #[cfg(unix)]
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    #[cfg(not(unix))]
    let limit: Option<u64> = None;
    limit
        .map_or(1_024, |files| {
            usize::try_from(files / 4 * 3).unwrap_or(MAX_DEFAULT_CONNECTIONS)
        })
        .clamp(1, MAX_DEFAULT_CONNECTIONS)
}

/// Serves `router` on `listener` within `limits`; the future runs until the process ends, or
/// until the signal of [`Serve::with_graceful_shutdown`] fires and the open connections are done.
///
/// Requests carry the peer address as [`ConnectInfo<SocketAddr>`](ConnectInfo).
pub fn serve(listener: TcpListener, router: Router, limits: ServeLimits) -> Serve {
    Serve {
        listener,
        router,
        limits,
        connections: OpenConnections::default(),
    }
}

/// The server [`serve`] makes: await it (it is [`IntoFuture`]), or add a shutdown signal first.
#[must_use = "a server does nothing until awaited"]
pub struct Serve {
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    connections: OpenConnections,
}

impl Serve {
    /// Stops accepting when `signal` completes, asks every open connection to close once its
    /// request in progress is answered (idle ones close at once), and completes when all are
    /// closed.
    pub fn with_graceful_shutdown<F>(self, signal: F) -> WithGracefulShutdown<F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }

    /// The open connections, counted as the limits count them.
    pub fn open_connections(&self) -> OpenConnections {
        self.connections.clone()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl IntoFuture for Serve {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self, std::future::pending()))
    }
}

/// A [`Serve`] with a shutdown signal: await it.
#[must_use = "a server does nothing until awaited"]
pub struct WithGracefulShutdown<F> {
    serve: Serve,
    signal: F,
}

impl<F> WithGracefulShutdown<F> {
    /// The open connections, counted as the limits count them.
    pub fn open_connections(&self) -> OpenConnections {
        self.serve.connections.clone()
    }
}

impl<F> std::fmt::Debug for WithGracefulShutdown<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithGracefulShutdown")
            .field("serve", &self.serve)
            .finish_non_exhaustive()
    }
}

impl<F> IntoFuture for WithGracefulShutdown<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self.serve, self.signal))
    }
}

/// The connections a server holds open, by client address (IPv6 by network). Cheap to clone;
/// clones see the same counts.
#[derive(Debug, Clone, Default)]
pub struct OpenConnections {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Only addresses with open connections: an entry goes with its last connection.
    by_group: HashMap<IpAddr, usize>,
}

impl OpenConnections {
    /// Open connections in all.
    pub fn total(&self) -> usize {
        self.lock().total
    }

    /// Open connections counted against `address`: those of its IPv4 address, or of its IPv6
    /// network under `ipv6_prefix` bits (the limits' prefix, for the server's own grouping).
    pub fn from_address(&self, address: IpAddr, ipv6_prefix: u8) -> usize {
        self.lock()
            .by_group
            .get(&group(address, ipv6_prefix))
            .copied()
            .unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Nothing panics while the counts are locked.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection from `peer`, or says which cap it is over.
    fn admit(&self, peer: IpAddr, limits: &ServeLimits) -> Result<Admitted, &'static str> {
        let key = group(peer, limits.ipv6_prefix);
        let mut counts = self.lock();
        if counts.total >= limits.total {
            return Err("the server's connection cap");
        }
        let from_group = counts.by_group.get(&key).copied().unwrap_or(0);
        if from_group >= limits.per_address {
            return Err("the per-address connection cap");
        }
        counts.by_group.insert(key, from_group + 1);
        counts.total += 1;
        Ok(Admitted {
            connections: self.clone(),
            key,
        })
    }
}

/// One counted connection; dropped when it closes, it is counted no more.
struct Admitted {
    connections: OpenConnections,
    key: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.connections.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.by_group.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.by_group.remove(&self.key);
            }
        }
    }
}

/// The key a client address is counted under: IPv4 as is (an IPv4-mapped IPv6 address as its
/// IPv4 address), IPv6 by its network of `ipv6_prefix` bits.
fn group(address: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let host_bits = 128 - u32::from(ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

async fn run(serve: Serve, signal: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
    let Serve {
        listener,
        router,
        limits,
        connections,
    } = serve;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let http = Arc::new(http);
    // `shutdown` tells the connections to finish; `done` closes when the last one has.
    let (shutdown, shutdown_seen) = watch::channel(());
    let (done, done_seen) = watch::channel(());
    let mut signal = std::pin::pin!(signal);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors, say: let connections close, then accept again.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let admitted = match connections.admit(peer.ip(), &limits) {
            Ok(admitted) => admitted,
            Err(cap) => {
                tracing::debug!(%peer, cap, "connection closed at once: over a cap");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            http.clone(),
            shutdown_seen.clone(),
            done_seen.clone(),
            admitted,
        ));
    }
    drop(listener);
    drop(shutdown_seen);
    drop(done_seen);
    let _ = shutdown.send(());
    done.closed().await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    http: Arc<http1::Builder>,
    mut shutdown: watch::Receiver<()>,
    done: watch::Receiver<()>,
    admitted: Admitted,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        // A router is always ready: no need to wait for readiness.
        let mut router = router.clone();
        async move { router.call(request).await }
    });
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!(%peer, %error, "connection ended with an error");
                }
                break;
            }
            // A shutdown, or the server itself dropped: finish the request in progress.
            _ = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    drop(admitted);
    drop(done);
}

/// Errors of one connection (the client gave up before it was accepted), not of the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_are_grouped_by_their_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(group(a, 64), group(b, 64));
        assert_eq!(group(a, 64), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(group(a, 64), group(other, 64));
        assert_eq!(group(a, 48), group(other, 48));
        assert_ne!(group(a, 128), group(b, 128));
        assert_eq!(group(a, 0), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(group(a, 200), a);
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(group(v4, 64), v4);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(group(mapped, 64), v4);
    }

    #[test]
    fn admissions_follow_both_caps_and_closing_releases_them() {
        let limits = ServeLimits::default()
            .with_max_connections_per_address(2)
            .with_max_connections(3);
        let open = OpenConnections::default();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let same_network: IpAddr = "2001:db8::ffff".parse().unwrap();
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        let first = open.admit(a, &limits).unwrap();
        let _second = open.admit(same_network, &limits).unwrap();
        assert_eq!(
            open.admit(a, &limits).err(),
            Some("the per-address connection cap")
        );
        let third = open.admit(b, &limits).unwrap();
        assert_eq!(
            open.admit("192.0.2.2".parse().unwrap(), &limits).err(),
            Some("the server's connection cap")
        );
        assert_eq!(open.total(), 3);
        assert_eq!(open.from_address(a, 64), 2);
        drop(first);
        assert_eq!(open.from_address(same_network, 64), 1);
        assert!(open.admit(a, &limits).is_ok());
        drop(third);
        assert_eq!(open.from_address(b, 64), 0);
        assert!(
            !open.lock().by_group.contains_key(&b),
            "no entry is left behind"
        );
    }

    #[test]
    fn limits_are_clamped_and_the_default_total_is_sane() {
        let limits = ServeLimits::new()
            .with_header_read_timeout(Duration::ZERO)
            .with_max_connections(0)
            .with_max_connections_per_address(0)
            .with_ipv6_prefix(255);
        assert_eq!(limits.header_read_timeout(), Duration::from_millis(1));
        assert_eq!(limits.max_connections(), 1);
        assert_eq!(limits.max_connections_per_address(), 1);
        assert_eq!(limits.ipv6_prefix(), 128);
        let total = ServeLimits::default().max_connections();
        assert!((1..=MAX_DEFAULT_CONNECTIONS).contains(&total), "{total}");
    }
}

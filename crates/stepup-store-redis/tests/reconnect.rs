//! Losing the server after opening: calls fail as `StoreError::Unavailable` within the timeouts
//! (never a hang or a panic), and the store reconnects by itself once the server is back. The
//! server is reached through a TCP relay of the test's own, which the test cuts and restores.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::ConnectionAddr;
use stepup_core::clock::SystemClock;
use stepup_store::{EphemeralStore, StoreError};
use stepup_store_redis::RedisStore;
use support::TestPrefix;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Relays every connection accepted on `listener` to `upstream` until the returned set is
/// aborted (which also closes the listener).
fn relay(listener: TcpListener, upstream: String) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let upstream = upstream.clone();
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    tasks
}

/// `url` pointing at `relay` instead of its server (credentials, database and options kept).
fn through(url: &str, relay: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("REDIS_URL has a scheme");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let credentials = authority
        .rsplit_once('@')
        .map_or(String::new(), |(credentials, _)| format!("{credentials}@"));
    format!("{scheme}://{credentials}{relay}{path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_server_is_unavailable_then_reconnected() {
    let Some(prefix) = TestPrefix::new() else {
        return;
    };
    let info = redis::Client::open(prefix.url()).expect("REDIS_URL is a Redis URL");
    let ConnectionAddr::Tcp(host, port) = info.get_connection_info().addr().clone() else {
        eprintln!("skipping: REDIS_URL is not a plain TCP URL");
        return;
    };
    let upstream = format!("{host}:{port}");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut tasks = relay(listener, upstream.clone());

    let store = RedisStore::open_with_clock(&through(prefix.url(), address), Arc::new(SystemClock))
        .await
        .expect("open through the relay")
        .with_prefix(prefix.prefix());
    let minute = Duration::from_secs(60);
    assert!(store.insert_if_absent("k", b"v", minute).await.unwrap());

    // Cut: the connection is reset and reconnecting is refused.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    for call in 0..3 {
        let started = Instant::now();
        let result = store.get("k").await;
        let elapsed = started.elapsed();
        eprintln!("call {call} while cut: {result:?} after {elapsed:?}");
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "expected Unavailable, got {result:?}"
        );
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    }
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));

    // Restore: the store reconnects by itself.
    let listener = TcpListener::bind(address).await.unwrap();
    let mut tasks = relay(listener, upstream);
    let started = Instant::now();
    let value = loop {
        match store.get("k").await {
            Ok(value) => break value,
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "not reconnected: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    eprintln!("reconnected after {:?}", started.elapsed());
    assert_eq!(value, Some(b"v".to_vec()));
    store.ping().await.unwrap();

    tasks.abort_all();
    prefix.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_store_opens_while_the_server_is_down_then_connects_by_itself() {
    let Some(prefix) = TestPrefix::new() else {
        return;
    };
    let info = redis::Client::open(prefix.url()).expect("REDIS_URL is a Redis URL");
    let ConnectionAddr::Tcp(host, port) = info.get_connection_info().addr().clone() else {
        eprintln!("skipping: REDIS_URL is not a plain TCP URL");
        return;
    };
    let upstream = format!("{host}:{port}");
    // An address nothing listens on yet.
    let address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();

    let started = Instant::now();
    let store = RedisStore::open_lazily(&through(prefix.url(), address), Arc::new(SystemClock))
        .await
        .expect("a lazy store opens without the server")
        .with_prefix(prefix.prefix());
    assert!(started.elapsed() < Duration::from_secs(1));
    let minute = Duration::from_secs(60);
    for call in 0..3 {
        let started = Instant::now();
        let result = store.insert_if_absent("k", b"v", minute).await;
        let elapsed = started.elapsed();
        eprintln!("call {call} while down: {result:?} after {elapsed:?}");
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "expected Unavailable, got {result:?}"
        );
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    }
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));

    // The server comes up: the store connects by itself, loads its scripts and serves.
    let listener = TcpListener::bind(address).await.unwrap();
    let mut tasks = relay(listener, upstream);
    let started = Instant::now();
    let inserted = loop {
        match store.insert_if_absent("k", b"v", minute).await {
            Ok(inserted) => break inserted,
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "not connected: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    eprintln!("connected after {:?}", started.elapsed());
    assert!(inserted, "nothing was stored while the server was down");
    assert_eq!(store.take("k").await.unwrap(), Some(b"v".to_vec()));
    assert_eq!(store.take("k").await.unwrap(), None);
    store.ping().await.unwrap();

    tasks.abort_all();
    prefix.clean_up().await;
}

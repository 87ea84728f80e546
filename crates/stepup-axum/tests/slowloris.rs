//! Slowloris against `stepup_axum::serve::serve`: 1,100 connections that never finish their
//! request head, from twenty loopback addresses (55 each, under the per-address cap), while
//! `/healthz` keeps answering promptly from another address; connections over the per-address
//! cap are closed at once; every half-sent connection (and one that trickles a byte every 100 ms)
//! is closed at the header-read timeout, after which the counts are back to zero and the capped
//! address is served again; a graceful shutdown then ends the server.
//!
//! The only real wait is the header-read timeout (2 s here). Linux only: it binds its clients to
//! 127.0.0.2, 127.0.0.3, … (all loopback on Linux), and it needs about 2,500 file descriptors
//! (each connection is two: the client's and the server's), raising the soft limit if it is lower.
#![cfg(target_os = "linux")]
#![allow(missing_docs)]

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use stepup_axum::serve::{ServeLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The header-read timeout of the server under attack.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Half-sent connections held at once.
const HELD: usize = 1_100;
/// The addresses they come from: 127.0.0.2 and the next 19.
const ATTACKERS: u8 = 20;
const PER_ADDRESS: usize = 64;
/// Connections over the per-address cap tried from one more address.
const OVER_CAP: usize = 16;
/// File descriptors the test needs: two per connection, and some room.
const FILES_NEEDED: u64 = 2 * (HELD as u64 + PER_ADDRESS as u64 + OVER_CAP as u64) + 300;
/// A request head cut short: no blank line ever comes.
const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow";

fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// Raises the soft open-file limit to `needed` when it is lower (up to the hard limit).
fn ensure_file_limit(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return;
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= needed,
        "the test needs {needed} file descriptors; the hard limit is {hard}"
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: limit.maximum,
        },
    )
    .expect("raising the soft open-file limit");
}

async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source.into(), 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// Whether the server has closed `stream` (end of file, or a reset), without waiting.
fn closed_by_server(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.try_read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server answered a request that was never finished"),
        Err(error) if error.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Reads until the server closes; how long that took from `since`, and what it sent.
async fn until_closed(mut stream: TcpStream, since: Instant, limit: Duration) -> (Duration, usize) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server kept a half-sent connection open");
    (since.elapsed(), received.len())
}

/// `GET path` from `source`: the status line, the body and how long it took.
async fn get_from(source: Ipv4Addr, server: SocketAddr, path: &str) -> (String, String, Duration) {
    let started = Instant::now();
    let mut stream = connect_from(source, server).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let elapsed = started.elapsed();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body, elapsed)
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_connections_neither_starve_healthz_nor_outlive_the_header_timeout() {
    ensure_file_limit(FILES_NEEDED);
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let limits = ServeLimits::default()
        .with_header_read_timeout(HEADER_TIMEOUT)
        .with_max_connections_per_address(PER_ADDRESS)
        .with_max_connections(5_000);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = serve(listener, router, limits).with_graceful_shutdown(async move {
        let _ = stopped.await;
    });
    let open = server.open_connections();
    let server = tokio::spawn(server.into_future());

    // 1,100 half-sent requests from 20 addresses, 55 each.
    // One after another: a burst of 1,100 connects would overflow the listen backlog, and the
    // kernel's SYN retries would only slow the test down.
    let started = Instant::now();
    let mut held = Vec::with_capacity(HELD);
    for index in 0..HELD {
        let source = loopback(2 + (index % usize::from(ATTACKERS)) as u8);
        // Before the connection exists, so before the server's timer starts.
        let opened = Instant::now();
        let mut stream = connect_from(source, server_addr).await;
        stream.write_all(HALF_SENT).await.unwrap();
        held.push((stream, opened));
    }
    let opened_in = started.elapsed();
    wait_until("the server holds all 1,100", Duration::from_secs(1), || {
        open.total() >= HELD
    })
    .await;
    assert_eq!(open.total(), HELD);
    assert_eq!(
        open.from_address(IpAddr::V4(loopback(2)), 64),
        HELD / usize::from(ATTACKERS)
    );
    assert!(
        held.iter().all(|(stream, _)| !closed_by_server(stream)),
        "a connection under the caps was closed before its timeout"
    );

    // One more that trickles a header byte every 100 ms: still cut at the timeout.
    let trickle = tokio::spawn(async move {
        let opened = Instant::now();
        let mut stream = connect_from(loopback(2 + ATTACKERS), server_addr).await;
        for byte in HALF_SENT.iter().cycle() {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if opened.elapsed() > HEADER_TIMEOUT * 3 {
                panic!("the trickling connection was never closed");
            }
        }
        opened.elapsed()
    });

    // `/healthz` from another address answers promptly while they are held.
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let (status, body, took) = get_from(loopback(1), server_addr, "/healthz").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, "ok");
        latencies.push(took);
    }
    let (status, peer, _) = get_from(loopback(1), server_addr, "/peer").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        peer.parse::<SocketAddr>().unwrap().ip(),
        IpAddr::V4(loopback(1))
    );
    assert!(
        open.total() >= HELD,
        "the half-sent connections were held all along"
    );
    latencies.sort();
    let slowest = latencies[latencies.len() - 1];
    assert!(
        slowest < Duration::from_millis(500),
        "/healthz took {slowest:?} while {HELD} connections were held"
    );

    // From one more address: the first 64 are held, the next 16 closed at once, unanswered.
    let capped = loopback(100);
    let mut at_cap = Vec::with_capacity(PER_ADDRESS);
    for _ in 0..PER_ADDRESS {
        let opened = Instant::now();
        let mut stream = connect_from(capped, server_addr).await;
        stream.write_all(HALF_SENT).await.unwrap();
        at_cap.push((stream, opened));
    }
    wait_until(
        "64 held from the capped address",
        Duration::from_secs(1),
        || open.from_address(IpAddr::V4(capped), 64) == PER_ADDRESS,
    )
    .await;
    let mut over_cap_closed_in = Duration::ZERO;
    for _ in 0..OVER_CAP {
        let stream = connect_from(capped, server_addr).await;
        let (took, sent) = until_closed(stream, Instant::now(), Duration::from_millis(500)).await;
        assert_eq!(sent, 0, "a connection over the cap got an answer");
        over_cap_closed_in = over_cap_closed_in.max(took);
    }
    assert!(at_cap.iter().all(|(stream, _)| !closed_by_server(stream)));
    assert_eq!(open.from_address(IpAddr::V4(capped), 64), PER_ADDRESS);

    // Every half-sent connection is closed at the header-read timeout, not before.
    let mut closing = tokio::task::JoinSet::new();
    for (stream, opened) in held.into_iter().chain(at_cap) {
        closing.spawn(until_closed(stream, opened, HEADER_TIMEOUT * 2));
    }
    let (mut first_close, mut last_close) = (Duration::MAX, Duration::ZERO);
    while let Some(closed) = closing.join_next().await {
        let (after, _) = closed.unwrap();
        first_close = first_close.min(after);
        last_close = last_close.max(after);
    }
    assert!(
        first_close >= HEADER_TIMEOUT,
        "a connection was closed after {first_close:?}, before the timeout"
    );
    let trickled_for = trickle.await.unwrap();
    assert!(trickled_for >= HEADER_TIMEOUT);
    wait_until(
        "every connection is uncounted",
        Duration::from_secs(1),
        || open.total() == 0,
    )
    .await;

    // The capped address is served again: its count went with its connections.
    let (status, _, _) = get_from(capped, server_addr, "/healthz").await;
    assert_eq!(status, "HTTP/1.1 200 OK");

    // A graceful shutdown ends the server, and nothing listens any more.
    let shutdown_started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    let shutdown_took = shutdown_started.elapsed();
    assert!(TcpStream::connect(server_addr).await.is_err());

    let median = latencies[latencies.len() / 2];
    println!(
        "slowloris: {HELD} half-sent connections from {ATTACKERS} addresses opened in \
         {opened_in:?} and held; /healthz answered 20 times meanwhile (median {median:?}, \
         slowest {slowest:?}); {OVER_CAP} connections over the per-address cap of {PER_ADDRESS} \
         closed within {over_cap_closed_in:?}; the half-sent ones closed {first_close:?} to \
         {last_close:?} after opening (header-read timeout {HEADER_TIMEOUT:?}), the trickling \
         one after {trickled_for:?}; graceful shutdown took {shutdown_took:?}"
    );
}

#[tokio::test]
async fn connections_over_the_total_cap_are_closed_at_once() {
    let router = Router::new().route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let limits = ServeLimits::default()
        .with_header_read_timeout(Duration::from_secs(30))
        .with_max_connections(10);
    let server = serve(listener, router, limits);
    let open = server.open_connections();
    let server = tokio::spawn(server.into_future());
    let mut held = Vec::new();
    for index in 0..10 {
        let mut stream = connect_from(loopback(2 + index), server_addr).await;
        stream.write_all(HALF_SENT).await.unwrap();
        held.push(stream);
    }
    wait_until("ten held", Duration::from_secs(1), || open.total() == 10).await;
    let stream = connect_from(loopback(50), server_addr).await;
    let (took, sent) = until_closed(stream, Instant::now(), Duration::from_millis(500)).await;
    assert_eq!(sent, 0);
    assert!(took < Duration::from_millis(500));
    // One closes: there is room again.
    drop(held.pop());
    wait_until("nine held", Duration::from_secs(1), || open.total() == 9).await;
    let (status, _, _) = get_from(loopback(50), server_addr, "/healthz").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    server.abort();
}

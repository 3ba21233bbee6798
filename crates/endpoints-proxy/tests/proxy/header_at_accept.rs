//! issue 19 item 8: a PROXY header that is already in the socket buffer when the connection is
//! accepted is read at once, in `accept` itself, without waiting for the reactor to report the
//! new socket readable (a second wake-up per connection, 10% of the accept rate).
//!
//! A header that is not there yet is waited for by `accept` itself (up to 16 such
//! connections), not by a task per connection: no spawn, no cross-thread wake per connection.
//!
//! Deterministic by ordering, not by time: the client's connect and write complete (on
//! loopback the bytes are in the server's receive buffer when `write_all` returns) before the
//! server's `accept` is polled, once, with a waker that never fires. Without the direct read,
//! the fresh socket's readiness is still unknown to tokio on that poll, so `accept` pends.

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use endpoints_core::Listener;
use endpoints_core::registry::build_server;
use endpoints_proxy::{ProxyHeader, encode};
use tokio::io::AsyncWriteExt;

use endpoints_tcp as _;
use endpoints_unix as _;

async fn listen(desc: &str) -> Box<dyn Listener> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Poll `accept` once; the connection if it was ready on that poll.
fn accept_in_one_poll(l: &mut Box<dyn Listener>) -> Option<endpoints_core::Connection> {
    let mut accept = l.accept();
    match accept
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(r) => Some(r.expect("accept")),
        Poll::Pending => None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_header_already_there_is_read_in_the_accept_call() {
    let mut l = listen("haproxy:trusted=any:tcp:0:interface=127.0.0.1").await;
    let addr = l.local_addr().expect("bound").ip().expect("ip");
    let src = endpoints_core::Address::Ip("192.0.2.1:5555".parse().expect("addr"));
    for version in [1u8, 2] {
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut bytes = encode(version, &src, &endpoints_core::Address::Ip(addr));
        bytes.extend_from_slice(b"GET /");
        client.write_all(&bytes).await.expect("write");
        // Let the reactor see the listening socket readable (one turn of the driver): the
        // connection is in the accept queue, the header in its receive buffer.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let conn = accept_in_one_poll(&mut l)
            .unwrap_or_else(|| panic!("v{version}: the header was there, accept pended"));
        assert_eq!(conn.peer_addr().to_string(), "192.0.2.1:5555");
        assert!(conn.extensions().get::<ProxyHeader>().is_some());
        // The bytes after the header are the application's.
        let mut conn = conn;
        let mut rest = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut conn, &mut rest)
            .await
            .expect("rest");
        assert_eq!(&rest, b"GET /");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_header_already_there_is_read_in_the_accept_call_on_unix() {
    let dir = std::env::temp_dir().join(format!("ep-inline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let mut l = listen(&format!(
        "haproxy:trusted=unix:unix:{}",
        endpoints_core::escape(&path.display().to_string())
    ))
    .await;
    let mut client = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect");
    client
        .write_all(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let conn = accept_in_one_poll(&mut l).expect("the header was there, accept pended");
    assert_eq!(conn.peer_addr().to_string(), "192.0.2.1:1");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that has sent nothing yet still gets its header read later (the direct read
/// finding nothing is not an error).
#[tokio::test(flavor = "current_thread")]
async fn a_header_that_comes_later_is_still_read() {
    let mut l = listen("haproxy:trusted=any:tcp:0:interface=127.0.0.1").await;
    let addr = l.local_addr().expect("bound").ip().expect("ip");
    let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(accept_in_one_poll(&mut l).is_none(), "nothing sent yet");
    client
        .write_all(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n")
        .await
        .expect("write");
    let conn = tokio::time::timeout(Duration::from_secs(10), l.accept())
        .await
        .expect("accepted within 10 s (expected: at once)")
        .expect("accept");
    assert_eq!(conn.peer_addr().to_string(), "192.0.2.1:1");
}

/// A connection whose header has not arrived when it is accepted costs no task: `accept`
/// keeps polling it with its own waker.
#[tokio::test(flavor = "current_thread")]
async fn a_header_not_there_yet_costs_no_task() {
    let mut l = listen("haproxy:trusted=any:tcp:0:interface=127.0.0.1").await;
    let addr = l.local_addr().expect("bound").ip().expect("ip");
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = metrics.num_alive_tasks();
    assert!(accept_in_one_poll(&mut l).is_none(), "nothing sent yet");
    assert_eq!(
        metrics.num_alive_tasks(),
        before,
        "four connections waiting for their headers, no task spawned for them"
    );
    for c in &mut clients {
        c.write_all(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n")
            .await
            .expect("write");
    }
    for _ in 0..4 {
        let conn = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("accepted within 10 s (expected: at once)")
            .expect("accept");
        assert_eq!(conn.peer_addr().to_string(), "192.0.2.1:1");
    }
}

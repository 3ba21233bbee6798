use std::time::Duration;

use endpoints_core::registry::build_server;
use endpoints_core::{Address, Description};
use endpoints_hostname as _;
use endpoints_ssh as _;
use endpoints_tcp as _;
use endpoints_test_support::sshd::{self, Sshd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_through_serves_1000_connections_then_close_releases_the_port() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("remote");
    let text = format!(
        "ssh:127.0.0.1:{}:listen=127.0.0.1\\:0:username=root:keys={}:knownHosts={}:agent=no",
        s.port,
        s.path("user_key"),
        s.path("known_hosts")
    );
    let server = build_server(&Description::parse(&text).expect("parses")).expect("builds");
    let mut listener = server.listen().await.expect("listens through sshd");
    let Address::Ip(addr) = listener.local_addr().expect("addr") else {
        panic!("an IP address")
    };
    assert_ne!(addr.port(), 0, "the port the server chose");
    let serving = tokio::spawn(async move {
        for _ in 0..1000 {
            let mut conn = listener.accept().await.expect("accepts");
            assert!(
                matches!(conn.peer_addr(), Address::Ip(a) if a.ip().is_loopback()),
                "the originator's address: {:?}",
                conn.peer_addr()
            );
            tokio::spawn(async move {
                let mut buf = [0u8; 16];
                let n = conn.read(&mut buf).await.expect("read");
                conn.write_all(&buf[..n]).await.expect("write");
                conn.shutdown().await.expect("eof");
            });
        }
        listener
    });
    for i in 0..1000u32 {
        let mut c = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects to sshd's port");
        c.write_all(&i.to_be_bytes()).await.expect("write");
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.expect("read");
        assert_eq!(back, i.to_be_bytes());
    }
    let listener = serving.await.expect("served");
    listener.close().await.expect("close cancels the forward");
    // Bounded: 100 tries 50 ms apart for sshd to let go of the port.
    let mut released = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(released, "sshd still listens on {addr}");
}

/// An application that echoes (reads, then writes what it read, one at a time) on a
/// listen-through connection while its peer keeps sending: its writes wait for the SSH
/// window, and the server's window adjustments must still get through although the
/// application reads nothing meanwhile (russh's session stops for a channel whose queue is
/// full, adjustments and all). Found by the matrix's `ssh-listen` echo cell (1 run in 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_on_a_listen_through_connection_never_stalls() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("echoback");
    let text = format!(
        "ssh:127.0.0.1:{}:listen=127.0.0.1\\:0:username=root:keys={}:knownHosts={}:agent=no",
        s.port,
        s.path("user_key"),
        s.path("known_hosts")
    );
    let server = build_server(&Description::parse(&text).expect("parses")).expect("builds");
    const LEN: usize = 6 << 20;
    for round in 0..20 {
        // As the matrix's cells: a listener (and so a session) each, dropped once it accepted.
        let mut listener = server.listen().await.expect("listens through sshd");
        let Address::Ip(addr) = listener.local_addr().expect("addr") else {
            panic!("an IP address")
        };
        let echoing = async {
            let conn = listener.accept().await.expect("accepts");
            drop(listener);
            let (mut r, mut w) = tokio::io::split(conn);
            let n = tokio::io::copy(&mut r, &mut w).await.expect("echo");
            w.shutdown().await.expect("eof");
            n
        };
        let client = async {
            let c = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connects");
            let (mut r, mut w) = c.into_split();
            let data = vec![0x3cu8; LEN];
            let (wrote, got) = tokio::join!(
                async {
                    w.write_all(&data).await?;
                    w.shutdown().await
                },
                async {
                    let mut n = 0usize;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match r.read(&mut buf).await? {
                            0 => return std::io::Result::Ok(n),
                            k => n += k,
                        }
                    }
                }
            );
            wrote.expect("client writes");
            got.expect("client reads")
        };
        // A stall is forever; the echo of 32 MiB on loopback takes about a second in a debug
        // build: 60 s is far beyond it.
        let (echoed, got) = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::join!(echoing, client)
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: the echo stalled"));
        assert_eq!(echoed as usize, LEN);
        assert_eq!(got, LEN);
    }
}

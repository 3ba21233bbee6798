//! A cancelled connect (its future dropped mid-handshake) leaves no descriptor open. Alone in
//! its test binary: it counts this process's descriptors.

mod common;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use endpoints_core::registry::build_client;

use endpoints_tcp as _;
use endpoints_tunnel as _;

/// One test: the two parts count this process's descriptors and must not run at once.
#[tokio::test]
async fn cancelled_connects_leave_no_descriptor_open() {
    cancelled_during_the_handshake().await;
    cancelled_at_any_point_through_real_proxies().await;
}

/// `f`, dropped after it has returned `Pending` `n` times (each time it waited for the
/// network), or its output.
async fn cut_after_polls<F: Future>(f: F, n: usize) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut pending = 0;
    std::future::poll_fn(|cx| match f.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => {
            pending += 1;
            if pending >= n {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        }
    })
    .await
}

/// The descriptor count once it is back to `before`, or after 2 s: the in-process echo
/// server closes its side when the proxy passes the close on, a moment later. A leak stays.
async fn settled(before: usize) -> usize {
    for _ in 0..100 {
        if common::open_fds() <= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    common::open_fds()
}

async fn cancelled_during_the_handshake() {
    for prefix in ["socks5", "httpconnect"] {
        let (proxy, mut accepted) = common::silent_proxy().await;
        let d = format!("{prefix}:h.example:1:proxy={}", common::tcp_proxy(proxy));
        let client = build_client(&d.parse().expect("parse")).expect("build");
        let before = common::open_fds();
        {
            let connect = client.connect();
            tokio::pin!(connect);
            // Run the connect until the proxy has accepted (the handshake is then waiting for
            // an answer that never comes), then drop it.
            let held = tokio::select! {
                r = &mut connect => panic!("{prefix}: connect finished against a silent proxy: {r:?}"),
                s = accepted.recv() => s.expect("the proxy accepted"),
            };
            let during = common::open_fds();
            assert!(
                during >= before + 2,
                "{prefix}: both ends open while connecting ({before} -> {during})"
            );
            let r = tokio::time::timeout(Duration::from_millis(50), &mut connect).await;
            assert!(r.is_err(), "{prefix}: still waiting for the proxy's answer");
            drop(held);
        }
        let after = settled(before).await;
        assert_eq!(
            before, after,
            "{prefix}: descriptors left open by a cancelled connect"
        );
    }
}

/// Through the real proxies: connects cut off at each point they wait for the network (the
/// connection to the proxy, each step of its handshake), and the completed ones, leave
/// nothing open either.
async fn cancelled_at_any_point_through_real_proxies() {
    let have_microsocks = common::peer_startable("microsocks", "-h", "microsocks");
    let have_tinyproxy = endpoints_conformance::peer_program("tinyproxy", "-v", "tinyproxy");
    let echo = common::echo_server().await;
    let mut descriptions = Vec::new();
    let mut proxies = Vec::new();
    if have_microsocks {
        let p = common::microsocks("alice", "s3cret").await;
        descriptions.push(format!(
            "socks5:127.0.0.1:{echo}:proxy={}:user=alice:password=s3cret",
            common::tcp_proxy(p.port)
        ));
        proxies.push(p);
    }
    if have_tinyproxy {
        let p = common::tinyproxy("cancel", "bob", "hunter2", &[echo]).await;
        descriptions.push(format!(
            "httpconnect:127.0.0.1:{echo}:proxy={}:user=bob:password=hunter2",
            common::tcp_proxy(p.port)
        ));
        proxies.push(p);
    }
    for d in descriptions {
        let client = build_client(&d.parse().expect("parse")).expect("build");
        // One complete connect first, so that lazily created runtime state is not counted.
        drop(client.connect().await.expect("connect"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = common::open_fds();
        let (mut cut, mut done) = (0, 0);
        for n in 1..=12 {
            match cut_after_polls(client.connect(), n).await {
                None => cut += 1,
                Some(r) => {
                    drop(r.expect("connect"));
                    done += 1;
                }
            }
        }
        assert!(
            cut >= 2 && done > 0,
            "`{d}`: {cut} connects cut off, {done} completed"
        );
        assert_eq!(
            before,
            settled(before).await,
            "`{d}`: descriptors left open"
        );
    }
}

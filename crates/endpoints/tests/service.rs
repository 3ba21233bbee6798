//! ClientService and ServerService.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoints::service::{ClientService, Phase, ServerService, WhenConnectedError};
use endpoints::{Address, ClientEndpoint, Connection, async_trait};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

/// A scripted endpoint: records when each attempt starts; fails the first `fail_first`
/// attempts; `hang` makes attempts never finish; successful attempts hand their far end to
/// the test.
#[derive(Debug)]
struct Scripted {
    attempts: Mutex<Vec<Instant>>,
    fail_first: usize,
    hang: bool,
    far_ends: Mutex<Vec<DuplexStream>>,
}

impl Scripted {
    fn new(fail_first: usize, hang: bool) -> Arc<Self> {
        Arc::new(Self {
            attempts: Mutex::new(Vec::new()),
            fail_first,
            hang,
            far_ends: Mutex::new(Vec::new()),
        })
    }
    fn attempts(&self) -> Vec<Instant> {
        self.attempts.lock().expect("lock").clone()
    }
    fn take_far_end(&self) -> Option<DuplexStream> {
        self.far_ends.lock().expect("lock").pop()
    }
}

#[derive(Debug)]
struct Handle(Arc<Scripted>);

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("scripted:")
    }
}

#[async_trait]
impl ClientEndpoint for Handle {
    async fn connect(&self) -> io::Result<Connection> {
        let n = {
            let mut a = self.0.attempts.lock().expect("lock");
            a.push(Instant::now());
            a.len()
        };
        if self.0.hang {
            std::future::pending::<()>().await;
        }
        if n <= self.0.fail_first {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("attempt {n} refused"),
            ));
        }
        let (near, far) = tokio::io::duplex(1024);
        self.0.far_ends.lock().expect("lock").push(far);
        Ok(Connection::new(near, Address::Unnamed, Address::Unnamed))
    }
}

/// The protocol used in these tests: the handle is the attempt number; the connection runs
/// until the other end closes.
fn service(script: &Arc<Scripted>) -> ClientService<usize> {
    let s = script.clone();
    ClientService::new(Box::new(Handle(script.clone())), move |mut conn| {
        let n = s.attempts().len();
        (n, async move {
            let mut b = [0u8; 64];
            while matches!(conn.read(&mut b).await, Ok(k) if k > 0) {}
        })
    })
}

#[tokio::test(start_paused = true)]
async fn retry_delays_follow_the_policy() {
    let script = Scripted::new(4, false);
    let svc = service(&script).retry(|n: u32| Duration::from_secs(u64::from(n)));
    svc.start();
    assert_eq!(svc.when_connected(None).await.expect("connects"), 5);
    let t = script.attempts();
    let gaps: Vec<u64> = t.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(
        gaps,
        vec![1, 2, 3, 4],
        "first retry waits policy(1), then policy(2)..."
    );
    svc.stop().await;
}

#[tokio::test(start_paused = true)]
async fn when_connected_gives_up_after_failures_and_after_stop() {
    let script = Scripted::new(usize::MAX, false);
    let svc = service(&script).retry(|_| Duration::from_secs(1));
    svc.start();
    match svc.when_connected(Some(3)).await {
        Err(WhenConnectedError::Failed(e)) => assert!(e.to_string().contains("refused"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(script.attempts().len(), 3);
    svc.stop().await;
    assert!(matches!(
        svc.when_connected(None).await,
        Err(WhenConnectedError::Cancelled)
    ));
}

#[tokio::test(start_paused = true)]
async fn stop_while_waiting_returns_at_once() {
    let script = Scripted::new(usize::MAX, false);
    let svc = service(&script).retry(|_| Duration::from_secs(3600));
    svc.start();
    while svc.phase() != Phase::Waiting {
        tokio::task::yield_now().await;
    }
    let t = Instant::now();
    svc.stop().await;
    assert_eq!(t.elapsed(), Duration::ZERO);
    assert_eq!(svc.phase(), Phase::Stopped);
}

#[tokio::test(start_paused = true)]
async fn stop_while_connecting_cancels_the_attempt() {
    let script = Scripted::new(0, true);
    let svc = service(&script);
    svc.start();
    while script.attempts().is_empty() {
        tokio::task::yield_now().await;
    }
    assert_eq!(svc.phase(), Phase::Connecting);
    let t = Instant::now();
    svc.stop().await;
    assert_eq!(t.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn stop_while_connected_closes_the_connection_then_start_again() {
    let script = Scripted::new(0, false);
    let svc = service(&script);
    svc.start();
    svc.when_connected(None).await.expect("connected");
    let mut far = script.take_far_end().expect("a connection");
    svc.stop().await;
    let mut b = [0u8; 1];
    assert_eq!(
        far.read(&mut b).await.expect("read"),
        0,
        "the connection was closed before stop returned"
    );
    svc.start();
    assert_eq!(svc.when_connected(None).await.expect("connects again"), 2);
    svc.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_prepare_closes_the_connection_and_counts() {
    let script = Scripted::new(0, false);
    let svc =
        service(&script)
            .retry(|_| Duration::from_secs(1))
            .prepare(|conn: Connection| async move {
                drop(conn);
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "login refused",
                ))
            });
    svc.start();
    match svc.when_connected(Some(2)).await {
        Err(WhenConnectedError::Failed(e)) => assert!(e.to_string().contains("login refused")),
        other => panic!("{other:?}"),
    }
    let mut far = script.take_far_end().expect("a connection was made");
    let mut b = [0u8; 1];
    assert_eq!(
        far.read(&mut b).await.expect("read"),
        0,
        "closed, not leaked"
    );
    svc.stop().await;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_50_times_is_reconnected_each_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let baseline = open_fds();
    let svc = ClientService::new(
        endpoints::client(&format!("tcp:127.0.0.1:{port}")).expect("builds"),
        |mut conn| {
            ((), async move {
                let mut b = [0u8; 64];
                while matches!(conn.read(&mut b).await, Ok(k) if k > 0) {}
            })
        },
    )
    .retry(|n: u32| Duration::from_millis(20 * u64::from(n)));
    svc.start();
    let mut lost_at: Option<std::time::Instant> = None;
    for round in 0..50 {
        let mut l = endpoints::listen(&format!("tcp:{port}:interface=127.0.0.1"))
            .await
            .expect("listen");
        let conn = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("reconnected")
            .expect("accept");
        if let Some(t) = lost_at {
            let gap = t.elapsed();
            assert!(
                gap >= Duration::from_millis(20),
                "round {round}: reconnected after {gap:?}, before policy(1) = 20 ms"
            );
            assert!(gap < Duration::from_secs(5), "round {round}: {gap:?}");
        }
        svc.when_connected(None).await.expect("connected");
        drop(conn);
        l.close().await.expect("close");
        lost_at = Some(std::time::Instant::now());
    }
    svc.stop().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while open_fds() > baseline && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Other tests of this binary run at the same time: no more descriptors than before.
    assert!(
        open_fds() <= baseline,
        "descriptors leaked: {} > {baseline}",
        open_fds()
    );
}

#[tokio::test]
async fn server_service_reports_listen_errors_at_start() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let err = ServerService::start(
        &[
            "tcp:0:interface=127.0.0.1",
            &format!("tcp:{port}:interface=127.0.0.1"),
        ],
        |_c| async {},
    )
    .await
    .expect_err("the second listen fails");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on `tcp:port={port}")),
        "{err}"
    );
}

#[tokio::test]
async fn server_service_drains_then_aborts() {
    let svc = ServerService::start(&["tcp:0:interface=127.0.0.1"], |mut conn| async move {
        let mut b = [0u8; 64];
        while let Ok(n) = conn.read(&mut b).await {
            if n == 0 || conn.write_all(&b[..n]).await.is_err() {
                break;
            }
        }
    })
    .await
    .expect("start");
    let d: endpoints::Description = svc.listening()[0].parse().expect("description");
    let port: u16 = d.get("port").and_then(|p| p.parse().ok()).expect("port");
    let mut quick = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    for s in [&mut quick, &mut slow] {
        s.write_all(b"x").await.expect("write");
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.expect("served");
    }
    let closer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(quick);
    });
    let report = svc.shutdown(Duration::from_millis(500)).await;
    closer.await.expect("closer");
    assert_eq!((report.drained, report.aborted), (1, 1), "{report:?}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "not listening any more"
    );
    let mut b = [0u8; 1];
    assert_eq!(
        slow.read(&mut b).await.unwrap_or(0),
        0,
        "the slow connection was closed"
    );
}

#[tokio::test(start_paused = true)]
async fn the_retry_count_restarts_only_after_a_stable_connection() {
    // Every connection is lost at once.
    let flaky = |stable: Option<Duration>| {
        let script = Scripted::new(0, false);
        let s = script.clone();
        let mut svc =
            ClientService::new(Box::new(Handle(script.clone())), move |conn: Connection| {
                let n = s.attempts().len();
                (n, async move { drop(conn) })
            })
            .retry(|n: u32| Duration::from_secs(u64::from(n)));
        if let Some(d) = stable {
            svc = svc.reset_after(d);
        }
        (svc, script)
    };
    for (stable, want) in [
        (None, vec![1, 1, 1]),
        (Some(Duration::from_secs(10)), vec![1, 2, 3]),
    ] {
        let (svc, script) = flaky(stable);
        svc.start();
        while script.attempts().len() < 4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        svc.stop().await;
        let t = script.attempts();
        let gaps: Vec<u64> = t
            .windows(2)
            .take(3)
            .map(|w| (w[1] - w[0]).as_secs())
            .collect();
        assert_eq!(gaps, want, "reset_after {stable:?}");
    }
}

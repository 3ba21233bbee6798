//! SOCKS5 connect rate: the `socks5:` client against `tokio-socks` used directly, both
//! through the same microsocks (user name and password) to the same accept-and-drop server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::{Config, Outcome};

/// The `socks5:` row, or a line saying why it is skipped.
pub(crate) async fn figures(cfg: &Config) -> Outcome<()> {
    let target = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target_addr = target.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = target.accept().await {
                drop(s);
            }
        }
    });
    let port = crate::free_port();
    let child = tokio::process::Command::new("microsocks")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            "bench",
            "-P",
            "pw",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(_child) = child else {
        println!(
            "| SOCKS5 connect rate, `socks5:` vs tokio-socks | skipped: `microsocks` not found (Debian package `microsocks`) | | | |"
        );
        server.abort();
        return Ok(());
    };
    let proxy: SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(proxy).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ours = endpoints::client(&format!(
        "socks5:127.0.0.1:{}:proxy=tcp\\:127.0.0.1\\:{port}:user=bench:password=pw",
        target_addr.port()
    ))
    .map_err(|e| format!("socks5: description: {e}"))?;
    // Half the plain connect count: each makes two connections (to the proxy, and its own).
    let n = (cfg.connects / 2).max(1);
    let measured = crate::interleave(
        cfg.runs,
        || async {
            let started = Instant::now();
            for _ in 0..n {
                let s = tokio_socks::tcp::Socks5Stream::connect_with_password(
                    proxy,
                    target_addr,
                    "bench",
                    "pw",
                )
                .await
                .map_err(|e| format!("tokio-socks connect: {e}"))?;
                drop(s);
            }
            Ok(n as f64 / started.elapsed().as_secs_f64())
        },
        || async {
            let started = Instant::now();
            for _ in 0..n {
                drop(
                    ours.connect()
                        .await
                        .map_err(|e| format!("socks5: connect: {e}"))?,
                );
            }
            Ok(n as f64 / started.elapsed().as_secs_f64())
        },
    )
    .await;
    server.abort();
    let (base, ours) = measured?;
    let r = crate::row(
        "connect rate through microsocks (user/password), `socks5:` vs `tokio-socks` `Socks5Stream::connect_with_password` (conn/s)",
        base,
        ours,
        "≥ 0.9",
    );
    // Let microsocks' threads see their connections close before it is killed.
    tokio::time::sleep(Duration::from_millis(10)).await;
    r
}

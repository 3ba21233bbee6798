//! TLS termination: `endpoints relay ssl:... tcp:backend` against `socat OPENSSL-LISTEN` and
//! haproxy `bind ... ssl crt`, each decrypting one connection's bytes and passing them to the
//! same plain TCP sink. The client is the same for all: `endpoints connect tls:`, fed from a
//! pipe by this process.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::relay::{cpu_secs, sink, wait_bound};

/// Which TLS server decrypts.
#[derive(Clone, Copy, Debug)]
enum Server {
    Haproxy,
    Socat,
    Endpoints,
}

/// The PEM files of one certificate (ECDSA P-256 for `localhost`): certificate, key, and
/// both in one file (haproxy's `crt`, socat's `cert=`).
pub(crate) struct Pems {
    pub(crate) cert: String,
    pub(crate) key: String,
    pub(crate) both: String,
}

/// The rows: throughput against haproxy and socat (medians of interleaved rounds), and CPU per
/// GiB of each server process. `Err` names what failed (a server that did not start, bytes
/// that did not arrive).
pub(crate) async fn figures(quick: bool, pems: &Pems) -> Result<(), String> {
    if !present("haproxy", "-v") || !present("socat", "-V") {
        println!(
            "| TLS termination | skipped: needs `haproxy` and `socat` (apt-get install haproxy socat) | | | |"
        );
        return Ok(());
    }
    let bytes: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let runs = if quick { 3 } else { 5 };
    let kinds = [Server::Haproxy, Server::Socat, Server::Endpoints];
    let mut gbits: Vec<Vec<f64>> = kinds.iter().map(|_| Vec::new()).collect();
    let mut cpu: Vec<Vec<f64>> = kinds.iter().map(|_| Vec::new()).collect();
    // One warm-up round, not counted; then round robin, so drift falls on all alike.
    for round in 0..=runs {
        for (i, kind) in kinds.iter().enumerate() {
            let t = transfer(*kind, bytes, pems).await?;
            if round > 0 {
                gbits[i].push(t.0);
                if let Some(c) = t.1 {
                    cpu[i].push(c);
                }
            }
        }
    }
    let med = |v: &[f64]| crate::median(v.to_vec());
    let (haproxy, socat, ours) = (med(&gbits[0]), med(&gbits[1]), med(&gbits[2]));
    let mb = bytes >> 20;
    crate::row(
        &format!(
            "TLS termination, {mb} MiB over one connection: `endpoints relay ssl: tcp:` vs haproxy `bind ssl crt` (Gbit/s)"
        ),
        haproxy,
        ours,
        "≥ 1.0",
    )?;
    crate::row(
        &format!(
            "TLS termination, {mb} MiB: `endpoints relay ssl: tcp:` vs `socat OPENSSL-LISTEN` (Gbit/s)"
        ),
        socat,
        ours,
        "informative",
    )?;
    let (c_h, c_s, c_o) = (med(&cpu[0]), med(&cpu[1]), med(&cpu[2]));
    if c_h.is_finite() && c_s.is_finite() && c_o > 0.0 {
        println!(
            "| TLS termination, {mb} MiB: CPU time of the server process per GiB (ms, 10 ms ticks) | haproxy {:.0}, socat {:.0} | endpoints {:.0} | {:.2}× less than haproxy | informative |",
            c_h * 1e3,
            c_s * 1e3,
            c_o * 1e3,
            c_h / c_o
        );
    } else {
        return Err("TLS termination: no CPU readings from /proc".into());
    }
    Ok(())
}

fn present(program: &str, arg: &str) -> bool {
    std::process::Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn bin() -> String {
    std::env::var("ENDPOINTS_BIN").unwrap_or_else(|_| "target/release/endpoints".into())
}

/// A TLS server in front of `sink`: where it listens, the process.
async fn start(kind: Server, sink: SocketAddr, pems: &Pems) -> Result<(u16, Child), String> {
    match kind {
        Server::Endpoints => {
            let mut child = Command::new(bin())
                .args([
                    "relay",
                    &format!(
                        "ssl:0:privateKey={}:certKey={}:interface=127.0.0.1",
                        endpoints::escape(&pems.key),
                        endpoints::escape(&pems.cert)
                    ),
                    &format!("tcp:{}:{}", sink.ip(), sink.port()),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("endpoints relay: {e} (run through `cargo xtask bench`)"))?;
            let stderr = child.stderr.take().ok_or("endpoints relay: no stderr")?;
            let mut lines = BufReader::new(stderr).lines();
            let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                .await
                .map_err(|_| "endpoints relay: no `listening on` line within 10 s")?
                .map_err(|e| format!("endpoints relay: {e}"))?
                .ok_or("endpoints relay: exited before listening")?;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            let d: endpoints::Description = line
                .trim_start_matches("listening on ")
                .parse()
                .map_err(|e| format!("endpoints relay: `{line}`: {e}"))?;
            let port = d
                .get("port")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("endpoints relay: no port in `{line}`"))?;
            Ok((port, child))
        }
        Server::Socat => {
            let port = crate::free_port();
            let child = Command::new("socat")
                .args([
                    "-b",
                    "65536",
                    &format!(
                        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={},verify=0",
                        pems.both
                    ),
                    &format!("TCP:{sink}"),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("socat: {e}"))?;
            wait_bound(port).await?;
            Ok((port, child))
        }
        Server::Haproxy => {
            let port = crate::free_port();
            let cfg = std::env::temp_dir().join(format!(
                "endpoints-bench-haproxy-{}-{port}.cfg",
                std::process::id()
            ));
            let text = format!(
                "global\n  maxconn 100\n\
                 defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
                 frontend tls\n  bind 127.0.0.1:{port} ssl crt {}\n  default_backend sink\n\
                 backend sink\n  server sink {sink}\n",
                pems.both
            );
            std::fs::write(&cfg, text).map_err(|e| format!("haproxy config: {e}"))?;
            let child = Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("haproxy: {e}"))?;
            let bound = wait_bound(port).await;
            let _ = std::fs::remove_file(&cfg);
            bound?;
            Ok((port, child))
        }
    }
}

/// `bytes` from the client through `kind` to the sink: (Gbit/s, CPU seconds of the server
/// process per GiB).
async fn transfer(kind: Server, bytes: u64, pems: &Pems) -> Result<(f64, Option<f64>), String> {
    let (target, count, sink_task) = sink().await;
    let (port, server) = start(kind, target, pems).await?;
    let pid = server.id();
    let cpu_before = pid.and_then(cpu_secs);
    let started = Instant::now();
    let mut client = Command::new(bin())
        .args([
            "connect",
            &format!(
                "tls:localhost:{port}:trustRoots={}",
                endpoints::escape(&pems.cert)
            ),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("endpoints connect: {e}"))?;
    let mut stdin = client.stdin.take().ok_or("endpoints connect: no stdin")?;
    let feeder = tokio::spawn(async move {
        let buf = vec![0x5Au8; 1 << 16];
        let mut sent = 0u64;
        while sent < bytes {
            if stdin.write_all(&buf).await.is_err() {
                break;
            }
            sent += buf.len() as u64;
        }
        sent
    });
    // Bounded: 1 GiB at 0.1 Gbit/s would be 86 s; past 120 s something is stuck.
    let mut deadline = started + Duration::from_secs(120);
    let mut client_ended = false;
    while count.load(Ordering::Relaxed) < bytes {
        if !client_ended && feeder.is_finished() && client_gone(&mut client) {
            // The client may end before the sink has read the last bytes (the server closed
            // once they were written to the sink's socket): a few seconds more, not 120.
            client_ended = true;
            deadline = deadline.min(Instant::now() + Duration::from_secs(5));
        }
        if Instant::now() > deadline {
            let got = count.load(Ordering::Relaxed);
            sink_task.abort();
            let mut why = String::new();
            if let Some(mut e) = client.stderr.take() {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio::io::AsyncReadExt::read_to_string(&mut e, &mut why),
                )
                .await;
            }
            return Err(format!(
                "TLS termination through {kind:?}: {got} of {bytes} bytes reached the sink ({} lost) within {:.0} s; client said: {}",
                bytes - got,
                started.elapsed().as_secs_f64(),
                why.trim()
            ));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, pid.and_then(cpu_secs)) {
        (Some(b), Some(a)) => Some((a - b) / (bytes as f64 / f64::from(1 << 30))),
        _ => None,
    };
    drop((client, server));
    sink_task.abort();
    Ok((bytes as f64 * 8.0 / secs / 1e9, cpu))
}

/// Whether the client process has exited.
fn client_gone(client: &mut Child) -> bool {
    matches!(client.try_wait(), Ok(Some(_)) | Err(_))
}

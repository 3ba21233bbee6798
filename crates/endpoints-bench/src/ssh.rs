//! `ssh:` benchmarks (issue 33), against OpenSSH on the same `sshd` in the same run:
//! bytes through `endpoints relay tcp: ssh:...:forward=...` vs `ssh -N -L` to the same echo,
//! and new forwards per second on an open session (our `ssh:` client's connects vs TCP
//! connections through `ssh -N -L`'s open session, each a new `direct-tcpip` channel).
//!
//! Each client's default cipher differs (OpenSSH's is chacha20-poly1305, ours AES-256-GCM
//! where the CPU has AES instructions), so the throughput is also compared cipher for cipher:
//! `ssh -c` told to use ours, and both on an sshd that offers only chacha20-poly1305. The
//! cipher of each session is read from the sshd's log, not assumed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::Outcome;

/// A throw-away sshd on 127.0.0.1 with its keys (as endpoints-test-support's, which the
/// bench cannot depend on).
struct Sshd {
    _child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn keygen(path: &Path) -> Outcome<()> {
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("ssh-keygen: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err("ssh-keygen failed".into())
    }
}

/// `ciphers`: the only ciphers the sshd offers (its `Ciphers`), or its defaults.
async fn sshd(ciphers: Option<&str>) -> Outcome<Sshd> {
    let dir = std::env::temp_dir().join(format!(
        "endpoints-bench-sshd-{}-{}",
        std::process::id(),
        if ciphers.is_some() {
            "ciphers"
        } else {
            "default"
        }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    keygen(&dir.join("host_key"))?;
    keygen(&dir.join("user_key"))?;
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys"))
        .map_err(|e| e.to_string())?;
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = crate::free_port();
    let d = dir.display();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nAllowTcpForwarding yes\n\
             MaxSessions 1000\nMaxStartups 1000\nLogLevel DEBUG1\n{}",
            ciphers
                .map(|c| format!("Ciphers {c}\n"))
                .unwrap_or_default()
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        // The log says which cipher each session took (`kex: client->server cipher: ...`).
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("sshd: {e}"))?;
    crate::relay::wait_bound(port).await?;
    let host = std::fs::read_to_string(dir.join("host_key.pub")).map_err(|e| e.to_string())?;
    let mut w = host.split_whitespace();
    let (t, k) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
    std::fs::write(
        dir.join("known_hosts"),
        format!("[127.0.0.1]:{port} {t} {k}\n"),
    )
    .map_err(|e| e.to_string())?;
    Ok(Sshd {
        _child: child,
        dir,
        port,
    })
}

/// The cipher of the last session the sshd opened (client to server), from its log.
fn last_cipher(s: &Sshd) -> Outcome<String> {
    let log = std::fs::read_to_string(s.dir.join("sshd.log")).map_err(|e| e.to_string())?;
    log.lines()
        .rev()
        .find_map(|l| {
            let rest = l.split("kex: client->server cipher: ").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        })
        .ok_or_else(|| "the sshd's log names no cipher".to_owned())
}

/// An echo server in this process: the same for both sides.
async fn echo() -> Outcome<u16> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = l.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    Ok(port)
}

#[derive(Clone, Copy, Debug)]
enum Side {
    OpenSsh,
    Endpoints,
}

fn described(s: &Sshd, echo: u16) -> String {
    format!(
        "ssh:127.0.0.1:{}:username=root:keys={}/user_key:knownHosts={}/known_hosts:agent=no:forward=127.0.0.1\\:{echo}",
        s.port,
        s.dir.display(),
        s.dir.display()
    )
}

/// A local port forwarded to the echo through the sshd, and the process that holds it.
/// `cipher`: OpenSSH's `-c` (its default when `None`; ours always takes its default).
async fn forward(
    side: Side,
    s: &Sshd,
    echo: u16,
    cipher: Option<&str>,
) -> Outcome<(SocketAddr, Child)> {
    match side {
        Side::OpenSsh => {
            let port = crate::free_port();
            let mut ssh = Command::new("ssh");
            if let Some(c) = cipher {
                ssh.args(["-c", c]);
            }
            let child = ssh
                .args(["-N", "-L", &format!("127.0.0.1:{port}:127.0.0.1:{echo}")])
                .args([
                    "-p",
                    &s.port.to_string(),
                    "-i",
                    &format!("{}/user_key", s.dir.display()),
                ])
                .args([
                    "-o",
                    &format!("UserKnownHostsFile={}/known_hosts", s.dir.display()),
                ])
                .args([
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "IdentitiesOnly=yes",
                ])
                .arg("root@127.0.0.1")
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("ssh: {e}"))?;
            crate::relay::wait_bound(port).await?;
            Ok((SocketAddr::from(([127, 0, 0, 1], port)), child))
        }
        Side::Endpoints => {
            let bin = std::env::var("ENDPOINTS_BIN")
                .unwrap_or_else(|_| "target/release/endpoints".into());
            let mut child = Command::new(bin)
                .args(["relay", "tcp:0:interface=127.0.0.1", &described(s, echo)])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    format!(
                        "endpoints relay: {e} (run through `cargo xtask bench`, which builds it)"
                    )
                })?;
            let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
            let port = loop {
                let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                    .await
                    .map_err(|_| "endpoints relay: no `listening on` line within 10 s")?
                    .map_err(|e| format!("endpoints relay: {e}"))?
                    .ok_or("endpoints relay: exited before listening")?;
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let d: endpoints::Description = rest.parse().map_err(|e| format!("{e}"))?;
                    break d
                        .get("port")
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or("endpoints relay: no port")?;
                }
            };
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok((SocketAddr::from(([127, 0, 0, 1], port)), child))
        }
    }
}

/// Context switches of process `pid`, all its threads (`/proc/PID/task/*/status`).
fn switches(pid: u32) -> Option<u64> {
    let mut n = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status = std::fs::read_to_string(t.ok()?.path().join("status")).ok()?;
        for l in status.lines() {
            if let Some(v) = l
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                n += v.trim().parse::<u64>().ok()?;
            }
        }
    }
    Some(n)
}

/// One echo run: Gbit/s, the session's cipher, and the client process's CPU seconds and
/// context switches per GiB echoed (when /proc says).
struct Echoed {
    gbps: f64,
    cipher: String,
    cpu_per_gib: Option<f64>,
    switches_per_gib: Option<f64>,
}

/// `bytes` echoed through the forward on one connection. Both sessions are open before the
/// clock starts: `ssh -N -L` opens its own before it listens, ours opens on the first
/// connection, so a one-byte echo goes through first.
async fn throughput(
    side: Side,
    s: &Sshd,
    echo: u16,
    bytes: u64,
    cipher: Option<&str>,
) -> Outcome<Echoed> {
    let (addr, child) = forward(side, s, echo, cipher).await?;
    let warm = async {
        let mut c = TcpStream::connect(addr).await?;
        c.write_all(b"x").await?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await?;
        std::io::Result::Ok(())
    };
    // Bounded: a session opens in well under a second on loopback.
    match tokio::time::timeout(Duration::from_secs(30), warm).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("{side:?}: the first echo failed: {e}")),
        Err(_) => return Err(format!("{side:?}: no first echo within 30 s")),
    }
    let pid = child.id();
    let before = (pid.and_then(crate::relay::cpu_secs), pid.and_then(switches));
    let started = Instant::now();
    let run = async {
        let c = TcpStream::connect(addr).await?;
        let (mut r, mut w) = c.into_split();
        let writer = tokio::spawn(async move {
            let buf = vec![0x5Au8; 1 << 16];
            let mut sent = 0u64;
            while sent < bytes {
                w.write_all(&buf).await?;
                sent += buf.len() as u64;
            }
            w.shutdown().await?;
            std::io::Result::Ok(())
        });
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        writer.await.map_err(std::io::Error::other)??;
        std::io::Result::Ok(got)
    };
    // Bounded: 1 GiB at 0.1 Gbit/s would take 86 s; past 180 s something is stuck.
    let got = match tokio::time::timeout(Duration::from_secs(180), run).await {
        Ok(Ok(got)) => got,
        Ok(Err(e)) => return Err(format!("{side:?}: the echo failed: {e}")),
        Err(_) => return Err(format!("{side:?}: the echo did not end within 180 s")),
    };
    let secs = started.elapsed().as_secs_f64();
    let gib = bytes as f64 / f64::from(1u32 << 30);
    let cpu_per_gib = match (before.0, pid.and_then(crate::relay::cpu_secs)) {
        (Some(a), Some(b)) => Some((b - a) / gib),
        _ => None,
    };
    let switches_per_gib = match (before.1, pid.and_then(switches)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / gib),
        _ => None,
    };
    drop(child);
    if got != bytes {
        return Err(format!("{side:?}: {got} of {bytes} bytes came back"));
    }
    Ok(Echoed {
        gbps: bytes as f64 * 8.0 / secs / 1e9,
        cipher: last_cipher(s)?,
        cpu_per_gib,
        switches_per_gib,
    })
}

/// New forwards per second on an open session: `conns` one-byte echoes, `concurrency` at a
/// time. OpenSSH: TCP connections to `ssh -N -L`'s port (a channel each on its session);
/// ours: `connect()` on one `ssh:` client endpoint (a channel each on its session).
async fn forward_rate(
    side: Side,
    s: &Sshd,
    echo: u16,
    conns: usize,
    concurrency: usize,
) -> Outcome<f64> {
    let (hold, client): (
        Option<Child>,
        Option<std::sync::Arc<dyn endpoints::ClientEndpoint>>,
    );
    let addr;
    match side {
        Side::OpenSsh => {
            let (a, child) = forward(side, s, echo, None).await?;
            // Open the session first: one connection through it.
            let mut c = TcpStream::connect(a).await.map_err(|e| e.to_string())?;
            c.write_all(b"x").await.map_err(|e| e.to_string())?;
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            hold = Some(child);
            client = None;
            addr = Some(a);
        }
        Side::Endpoints => {
            let e: std::sync::Arc<dyn endpoints::ClientEndpoint> =
                endpoints::client(&described(s, echo))
                    .map_err(|e| e.to_string())?
                    .into();
            // Open the session first.
            let mut c = e.connect().await.map_err(|e| e.to_string())?;
            c.write_all(b"x").await.map_err(|e| e.to_string())?;
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            hold = None;
            client = Some(e);
            addr = None;
        }
    }
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < conns {
                let mut back = Vec::new();
                match (&client, addr) {
                    (Some(e), _) => {
                        let mut c = e.connect().await?;
                        c.write_all(b"x").await?;
                        c.shutdown().await?;
                        c.read_to_end(&mut back).await?;
                    }
                    (None, Some(a)) => {
                        let mut c = TcpStream::connect(a).await?;
                        c.write_all(b"x").await?;
                        c.shutdown().await?;
                        c.read_to_end(&mut back).await?;
                    }
                    (None, None) => return Err(std::io::Error::other("nothing to connect to")),
                }
                if back != b"x" {
                    return Err(std::io::Error::other(format!("echoed {back:?}")));
                }
            }
            std::io::Result::Ok(())
        }));
    }
    let all = async {
        for t in tasks {
            t.await.map_err(std::io::Error::other)??;
        }
        std::io::Result::Ok(())
    };
    // Bounded: 2,000 forwards at 50/s would take 40 s; past 120 s something is stuck.
    match tokio::time::timeout(Duration::from_secs(120), all).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("{side:?}: a forward failed: {e}")),
        Err(_) => return Err(format!("{side:?}: {conns} forwards not done within 120 s")),
    }
    let rate = conns as f64 / started.elapsed().as_secs_f64();
    drop(hold);
    Ok(rate)
}

/// The `ssh` rows: throughput and new forwards per second, ours vs OpenSSH's client on the
/// same sshd; interleaved runs, medians.
pub(crate) async fn figures(quick: bool) -> Outcome<()> {
    if !Path::new("/usr/sbin/sshd").exists()
        || std::process::Command::new("ssh")
            .arg("-V")
            .output()
            .is_err()
    {
        println!(
            "| ssh benchmarks | skipped: `sshd` or `ssh` not found (openssh-server, openssh-client) | | | |"
        );
        return Ok(());
    }
    let s = sshd(None).await?;
    let chacha = sshd(Some("chacha20-poly1305@openssh.com")).await?;
    let echo = echo().await?;
    let bytes: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let runs = if quick { 3 } else { 5 };
    let (conns, concurrency) = if quick { (300, 8) } else { (2_000, 8) };
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    let mut theirs_same = Vec::new();
    let (mut theirs_chacha, mut ours_chacha) = (Vec::new(), Vec::new());
    let (mut theirs_rate, mut ours_rate) = (Vec::new(), Vec::new());
    let (mut their_cipher, mut our_cipher) = (String::new(), String::new());
    let mut chacha_ciphers = Vec::new();
    // Per cell (ours default, theirs default, theirs same cipher, ours chacha, theirs chacha):
    // the client process's CPU and context switches per GiB.
    let mut usage: [Vec<(f64, f64)>; 5] = Default::default();
    let mut note = |cell: usize, e: &Echoed| {
        if let (Some(c), Some(w)) = (e.cpu_per_gib, e.switches_per_gib) {
            usage[cell].push((c, w));
        }
    };
    for _ in 0..runs {
        // Each client's default cipher.
        let e = throughput(Side::OpenSsh, &s, echo, bytes, None).await?;
        note(1, &e);
        theirs.push(e.gbps);
        their_cipher = e.cipher;
        let e = throughput(Side::Endpoints, &s, echo, bytes, None).await?;
        note(0, &e);
        ours.push(e.gbps);
        our_cipher = e.cipher;
        // OpenSSH told to use our cipher.
        let e = throughput(Side::OpenSsh, &s, echo, bytes, Some(&our_cipher)).await?;
        if e.cipher != our_cipher {
            return Err(format!("`ssh -c {our_cipher}` took {}", e.cipher));
        }
        note(2, &e);
        theirs_same.push(e.gbps);
        // Both on an sshd that offers chacha20-poly1305 only.
        let e = throughput(Side::OpenSsh, &chacha, echo, bytes, None).await?;
        note(4, &e);
        theirs_chacha.push(e.gbps);
        chacha_ciphers.push(e.cipher);
        let e = throughput(Side::Endpoints, &chacha, echo, bytes, None).await?;
        note(3, &e);
        ours_chacha.push(e.gbps);
        chacha_ciphers.push(e.cipher);
        theirs_rate.push(forward_rate(Side::OpenSsh, &s, echo, conns, concurrency).await?);
        ours_rate.push(forward_rate(Side::Endpoints, &s, echo, conns, concurrency).await?);
    }
    if let Some(c) = chacha_ciphers
        .iter()
        .find(|c| *c != "chacha20-poly1305@openssh.com")
    {
        return Err(format!("the chacha20-poly1305-only sshd took {c}"));
    }
    let mb = bytes >> 20;
    crate::row(
        &format!(
            "ssh, {mb} MiB echoed through a forward: `endpoints relay tcp: ssh:...:forward=` vs `ssh -N -L` on the same sshd, each with its default cipher (ours {our_cipher}, OpenSSH {their_cipher}) (Gbit/s)"
        ),
        crate::median(theirs),
        crate::median(ours.clone()),
        "≥ 1.0",
    )?;
    crate::row(
        &format!(
            "ssh, {mb} MiB echoed, the same cipher: ours vs `ssh -c {our_cipher} -N -L` (Gbit/s)"
        ),
        crate::median(theirs_same),
        crate::median(ours),
        "≥ 1.0",
    )?;
    crate::row(
        &format!(
            "ssh, {mb} MiB echoed, the same cipher: both on an sshd offering only chacha20-poly1305@openssh.com (Gbit/s)"
        ),
        crate::median(theirs_chacha),
        crate::median(ours_chacha),
        "≥ 1.0",
    )?;
    // What each client process spends per GiB echoed (informative: where the time goes).
    let med =
        |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| crate::median(v.iter().map(f).collect());
    for (what, o, t) in [
        (format!("{our_cipher} vs OpenSSH's {their_cipher}"), 0, 1),
        (format!("both {our_cipher}"), 0, 2),
        ("both chacha20-poly1305@openssh.com".to_owned(), 3, 4),
    ] {
        if usage[o].is_empty() || usage[t].is_empty() {
            println!(
                "| ssh, client process per GiB echoed, {what} | not measured (no /proc readings) | | | |"
            );
            continue;
        }
        println!(
            "| ssh, client process per GiB echoed, {what}: CPU (ms, 10 ms ticks) and context switches | OpenSSH {:.0} ms, {:.0} | endpoints {:.0} ms, {:.0} | {:.2}× the CPU | informative |",
            med(&usage[t], |u| u.0) * 1e3,
            med(&usage[t], |u| u.1),
            med(&usage[o], |u| u.0) * 1e3,
            med(&usage[o], |u| u.1),
            med(&usage[o], |u| u.0) / med(&usage[t], |u| u.0),
        );
    }
    crate::row(
        &format!(
            "ssh, {conns} new forwards on an open session, {concurrency} at once: `ssh:` connects vs connections through `ssh -N -L` (forwards/s)"
        ),
        crate::median(theirs_rate),
        crate::median(ours_rate),
        "≥ 1.0",
    )?;
    Ok(())
}

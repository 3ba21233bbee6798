use std::time::Duration;

use endpoints_core::registry::build_client;
use endpoints_core::{ClientEndpoint, Description};
use endpoints_hostname as _;
use endpoints_ssh as _;
use endpoints_tcp as _;
use endpoints_test_support::sshd::{self, Sshd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) fn client(text: &str) -> Box<dyn ClientEndpoint> {
    build_client(&Description::parse(text).expect("parses")).expect("builds")
}

/// The description of a client of `s` as root with the authorized key, trusting its known
/// host key, no agent; `rest` adds the target and options.
pub(crate) fn described(s: &Sshd, rest: &str) -> String {
    format!(
        "ssh:127.0.0.1:{}:username=root:keys={}:knownHosts={}:agent=no:{rest}",
        s.port,
        s.path("user_key"),
        s.path("known_hosts")
    )
}

/// An echo server on 127.0.0.1: every connection's bytes back, then its half-close.
async fn echo() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// Send `len` pseudo-random bytes through `conn`, half-close, read everything back;
/// returns (hash sent, hash received, bytes received).
async fn round_trip(conn: endpoints_core::Connection, len: usize) -> (Vec<u8>, Vec<u8>, usize) {
    let (mut r, mut w) = tokio::io::split(conn);
    let writer = tokio::spawn(async move {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            for word in buf.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                word.copy_from_slice(&x.to_le_bytes());
            }
            let n = left.min(buf.len());
            ctx.update(&buf[..n]);
            w.write_all(&buf[..n]).await.expect("write");
            left -= n;
        }
        w.shutdown().await.expect("half-close");
        ctx.finish().as_ref().to_vec()
    });
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        got += n;
    }
    let sent = writer.await.expect("writer");
    (sent, ctx.finish().as_ref().to_vec(), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_carries_1_gib_both_ways_with_half_close() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("fwd1g");
    let port = echo().await;
    let c = client(&described(&s, &format!("forward=127.0.0.1\\:{port}")));
    let conn = c.connect().await.expect("connects");
    // Bounded: 1 GiB each way takes about 20 s in a debug build here; 10 minutes means stuck.
    let (sent, back, n) = tokio::time::timeout(Duration::from_secs(600), round_trip(conn, 1 << 30))
        .await
        .expect("1 GiB each way within 10 minutes");
    assert_eq!(n, 1 << 30);
    assert_eq!(sent, back, "the bytes came back unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_forward() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("unixfwd");
    let path = s.dir().join("echo.sock");
    let l = tokio::net::UnixListener::bind(&path).expect("bind");
    tokio::spawn(async move {
        while let Ok((st, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = st.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    let c = client(&described(&s, &format!("forward={}", path.display())));
    let conn = c.connect().await.expect("connects");
    let (sent, back, n) = round_trip(conn, 1 << 20).await;
    assert_eq!(n, 1 << 20);
    assert_eq!(sent, back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_cat_both_ways_with_half_close() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("cat");
    let c = client(&described(&s, "command=cat"));
    let conn = c.connect().await.expect("connects");
    let (sent, back, n) = round_trip(conn, 4 << 20).await;
    assert_eq!(n, 4 << 20);
    assert_eq!(sent, back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_exiting_3_is_an_error_after_its_output() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("exit3");
    let c = client(&described(
        &s,
        "command=echo\\ out\\;\\ echo\\ oops\\ >&2\\;\\ exit\\ 3",
    ));
    let mut conn = c.connect().await.expect("connects");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let err = loop {
        match conn.read(&mut buf).await {
            Ok(0) => panic!("a clean end after exit 3: {got:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(got, b"out\n", "the output comes first");
    let text = err.to_string();
    assert!(text.contains("exited with status 3"), "{text}");
    assert!(text.contains("oops"), "the last stderr line: {text}");
}

async fn refusal(text: &str) -> String {
    let c = client(text);
    match c.connect().await {
        Ok(_) => panic!("connected: {text}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_is_refused_with_its_fingerprint_and_the_fix() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("unknown");
    let text =
        described(&s, "command=true").replace(&s.path("known_hosts"), &s.path("empty_known_hosts"));
    let e = refusal(&text).await;
    let fp = String::from_utf8(
        std::process::Command::new("ssh-keygen")
            .args(["-lf", &s.path("host_key.pub")])
            .output()
            .expect("ssh-keygen -l")
            .stdout,
    )
    .expect("utf-8");
    let fp = fp.split_whitespace().nth(1).expect("fingerprint");
    assert!(e.contains("is not known"), "{e}");
    assert!(e.contains(fp), "{e} should name {fp}");
    assert!(e.contains("ssh-keyscan -p"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_is_refused_naming_the_line() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("changed");
    let text = described(&s, "command=true")
        .replace(&s.path("known_hosts"), &s.path("changed_known_hosts"));
    let e = refusal(&text).await;
    assert!(e.contains("HAS CHANGED"), "{e}");
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("ssh-keygen -R"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_fingerprint_lets_in_that_key_only() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("pinned");
    let fp = String::from_utf8(
        std::process::Command::new("ssh-keygen")
            .args(["-lf", &s.path("host_key.pub")])
            .output()
            .expect("ssh-keygen -l")
            .stdout,
    )
    .expect("utf-8");
    let fp = fp
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned();
    let good = format!(
        "ssh:127.0.0.1:{}:username=root:keys={}:fingerprint={}:agent=no:command=true",
        s.port,
        s.path("user_key"),
        fp.replace(':', "\\:")
    );
    let mut conn = client(&good).connect().await.expect("connects");
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.expect("`true` exits 0");
    let bad = good.replace(
        &fp.replace(':', "\\:"),
        "SHA256\\:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
    );
    let e = refusal(&bad).await;
    assert!(e.contains("not the pinned"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_naming_what_was_tried_and_offered() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("wrongkey");
    let text = described(&s, "command=true").replace(&s.path("user_key"), &s.path("other_key"));
    let e = refusal(&text).await;
    assert!(e.contains("refused `root`"), "{e}");
    assert!(e.contains("other_key"), "{e}");
    assert!(e.contains("the server offers: publickey"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_no_keys_is_refused_in_its_own_words() {
    if !sshd::available()
        || !endpoints_test_support::peers::startable("ssh-agent", "-h", "openssh-client")
    {
        return;
    }
    let s = Sshd::start("agent");
    let sock = s.dir().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    // Bounded: 100 tries of 50 ms for the agent's socket.
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = format!(
        "ssh:127.0.0.1:{}:username=root:knownHosts={}:agent={}:command=true",
        s.port,
        s.path("known_hosts"),
        sock.display()
    );
    let e = refusal(&text).await;
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(e.contains("holds no keys"), "{e}");
    assert!(e.contains("the server offers: publickey"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_forwards_share_one_session() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("hundred");
    let port = echo().await;
    let c: std::sync::Arc<dyn ClientEndpoint> =
        client(&described(&s, &format!("forward=127.0.0.1\\:{port}"))).into();
    let mut conns = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.connect().await }));
    }
    for t in tasks {
        conns.push(t.await.expect("task").expect("connects"));
    }
    assert_eq!(
        s.established(),
        1,
        "one TCP connection to sshd for 100 forwards"
    );
    for mut conn in conns {
        conn.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await.expect("echo");
        assert_eq!(&buf, b"ping");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_is_replaced_on_the_next_connect() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("killed");
    let port = echo().await;
    let c = client(&described(&s, &format!("forward=127.0.0.1\\:{port}")));
    let mut conn = c.connect().await.expect("connects");
    conn.write_all(b"1").await.expect("write");
    let mut b = [0u8; 1];
    conn.read_exact(&mut b).await.expect("echo");
    let pids = s.session_pids();
    assert!(!pids.is_empty(), "a session process");
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status();
    }
    // The old channel ends: a reset, not a clean end.
    let mut rest = Vec::new();
    let old = conn.read_to_end(&mut rest).await;
    assert!(old.is_err(), "a cut forward is an error: {old:?}");
    let mut conn = c.connect().await.expect("a new session");
    conn.write_all(b"2").await.expect("write");
    conn.read_exact(&mut b).await.expect("echo");
    assert_eq!(&b, b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_closes_after_idle_timeout() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("idle");
    let port = echo().await;
    let c = client(&described(
        &s,
        &format!("forward=127.0.0.1\\:{port}:idleTimeout=0.2"),
    ));
    let mut conn = c.connect().await.expect("connects");
    conn.write_all(b"x").await.expect("write");
    let mut b = [0u8; 1];
    conn.read_exact(&mut b).await.expect("echo");
    assert_eq!(s.established(), 1);
    drop(conn);
    // Bounded: 100 checks 50 ms apart (5 s, 25 times the 0.2 s idle time).
    let mut closed = false;
    for _ in 0..100 {
        if s.established() == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "the idle session was not closed");
    let mut conn = c.connect().await.expect("a new session");
    conn.write_all(b"y").await.expect("write");
    conn.read_exact(&mut b).await.expect("echo");
    assert_eq!(&b, b"y");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_key_takes_its_passphrase_from_a_file_never_a_prompt() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start("passphrase");
    let key = s.dir().join("locked_key");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "open sesame", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let public = std::fs::read_to_string(s.dir().join("locked_key.pub")).expect("pub");
    let mut authorized = std::fs::read_to_string(s.path("authorized_keys")).expect("keys");
    authorized.push_str(&public);
    std::fs::write(s.path("authorized_keys"), authorized).expect("write");
    let phrase = s.dir().join("phrase");
    std::fs::write(&phrase, "open sesame\n").expect("write");
    let base =
        described(&s, "command=true").replace(&s.path("user_key"), &key.display().to_string());
    // No passphrase: refused in words, nothing prompts.
    let e = refusal(&base).await;
    assert!(e.contains("it is encrypted"), "{e}");
    assert!(e.contains("passphraseFile="), "{e}");
    // A wrong one (the variable named holds something else).
    let e = refusal(&format!("{base}:passphraseEnv=PATH")).await;
    assert!(e.contains("wrong passphrase"), "{e}");
    // The right one, from a file; the description shows the file, not the passphrase.
    let good = client(&format!("{base}:passphraseFile={}", phrase.display()));
    assert!(!good.to_string().contains("sesame"), "{good}");
    let mut conn = good.connect().await.expect("connects");
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.expect("`true` exits 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_key_authenticates() {
    if !sshd::available()
        || !endpoints_test_support::peers::startable("ssh-agent", "-h", "openssh-client")
    {
        return;
    }
    let s = Sshd::start("agentkey");
    let said = agent_says_hi(&s).await;
    assert_eq!(said.expect("the agent's key is accepted"), b"hi\n");
}

/// An `ssh-agent` of its own holding `s`'s user key: `echo hi` run through `s` with
/// `agent=` that agent (and no key file); what came back. The agent is stopped after.
pub(crate) async fn agent_says_hi(s: &Sshd) -> std::io::Result<Vec<u8>> {
    let sock = s.dir().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    // Bounded: 100 tries of 50 ms for the agent's socket.
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let added = std::process::Command::new("ssh-add")
        .arg(s.path("user_key"))
        .env("SSH_AUTH_SOCK", &sock)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("ssh-add");
    let text = format!(
        "ssh:127.0.0.1:{}:username=root:knownHosts={}:agent={}:command=echo\\ hi",
        s.port,
        s.path("known_hosts"),
        sock.display()
    );
    let result = async {
        let mut conn = client(&text).connect().await?;
        let mut out = Vec::new();
        conn.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    }
    .await;
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(added.success(), "ssh-add took the key");
    result
}

/// The cipher each session took, client to server, from an sshd's DEBUG1 log.
fn ciphers_in(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split("kex: client->server cipher: ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Whether this CPU has AES and carry-less multiply instructions (as the client checks).
fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// With OpenSSH's default ciphers on offer, the client takes AES-256-GCM where the CPU has
/// AES instructions (ring runs it several times faster than chacha20-poly1305), else
/// chacha20-poly1305; and a server that insists on any one cipher of OpenSSH's default list
/// that russh implements still gets a working forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cipher_is_aes_gcm_with_aes_instructions_and_any_server_choice_works() {
    fn logged(first: String) -> sshd::Options {
        sshd::Options {
            first,
            log: true,
            ..sshd::Options::default()
        }
    }
    if !sshd::available() {
        return;
    }
    let port = echo().await;
    let s = Sshd::start_with("cipher-default", &logged("LogLevel DEBUG1\n".to_owned()));
    let c = client(&described(&s, &format!("forward=127.0.0.1\\:{port}")));
    let (sent, back, n) = round_trip(c.connect().await.expect("connects"), 1 << 20).await;
    assert_eq!((n, &sent), (1 << 20, &back));
    let want = if aes_in_hardware() {
        "aes256-gcm@openssh.com"
    } else {
        "chacha20-poly1305@openssh.com"
    };
    assert_eq!(ciphers_in(&s.log()), [want], "{}", s.log());
    for (i, cipher) in [
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes256-ctr",
        "aes128-ctr",
    ]
    .into_iter()
    .enumerate()
    {
        let s = Sshd::start_with(
            &format!("cipher-{i}"),
            &logged(format!("LogLevel DEBUG1\nCiphers {cipher}\n")),
        );
        let c = client(&described(&s, &format!("forward=127.0.0.1\\:{port}")));
        let conn = c.connect().await.expect("connects");
        let (sent, back, n) = round_trip(conn, 1 << 20).await;
        assert_eq!((n, &sent), (1 << 20, &back), "{cipher}");
        assert_eq!(ciphers_in(&s.log()), [cipher], "{}", s.log());
    }
}

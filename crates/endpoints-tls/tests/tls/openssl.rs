//! Interop with real OpenSSL (`openssl s_server` / `s_client`, Debian package `openssl`).
//! Without the program these tests print why and pass, except under `CI=true`.

use crate::common;
use std::process::Stdio;
use std::time::Duration;

use common::Pki;
use endpoints_core::Listener;
use endpoints_core::registry::{build_client, build_server};
use endpoints_tls::TlsInfo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use endpoints_tcp as _;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// `openssl s_server -rev` (echoes each line reversed) with `args`; returns once it accepts.
async fn s_server(port: u16, args: &[&str]) -> Child {
    let mut child = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-rev"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start s_server");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("ACCEPT") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "s_server did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// Send a line through `desc` to an `s_server -rev`; returns the reply and the TLS details.
async fn rev(desc: &str) -> std::io::Result<(String, TlsInfo)> {
    let client = build_client(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut conn = client.connect().await?;
    let info = conn
        .extensions()
        .get::<TlsInfo>()
        .cloned()
        .expect("TlsInfo");
    conn.write_all(b"hello\n").await?;
    let mut buf = vec![0u8; 6];
    conn.read_exact(&mut buf).await?;
    Ok((String::from_utf8_lossy(&buf).into_owned(), info))
}

#[tokio::test]
async fn our_client_against_s_server() {
    if !endpoints_conformance::peer_program("openssl", "version", "openssl") {
        return;
    }
    let pki = Pki::new("osl-client");
    let (cert, key, ca) = (
        pki.path("server-cert.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    );

    let port = free_port();
    let _srv = s_server(port, &["-cert", &cert, "-key", &key, "-alpn", "h2"]).await;
    let (reply, info) = rev(&format!(
        "tls:localhost:{port}:trustRoots={ca}:alpn=h2,http/1.1"
    ))
    .await
    .expect("good certificate");
    assert_eq!(reply, "olleh\n");
    assert_eq!(info.alpn.as_deref(), Some(&b"h2"[..]), "ALPN agreed");
    let e = rev(&format!(
        "tls:localhost:{port}:trustRoots={ca}:sni=wrong.example"
    ))
    .await
    .expect_err("wrong host");
    assert!(
        e.to_string()
            .contains("is for `localhost`, `127.0.0.1`, `::1`, not `wrong.example`"),
        "{e}"
    );
    let e = rev(&format!(
        "tls:localhost:{port}:trustRoots={}",
        pki.path("other-ca.pem")
    ))
    .await
    .expect_err("unknown CA");
    assert!(e.to_string().contains("which is not in"), "{e}");

    let port = free_port();
    let expired = pki.path("expired.pem");
    let _srv = s_server(port, &["-cert", &expired, "-key", &expired]).await;
    let e = rev(&format!("tls:localhost:{port}:trustRoots={ca}"))
        .await
        .expect_err("expired");
    assert!(e.to_string().contains("expired on 2002-01-01"), "{e}");

    let port = free_port();
    let _srv = s_server(
        port,
        &["-cert", &cert, "-key", &key, "-Verify", "1", "-CAfile", &ca],
    )
    .await;
    let client = pki.path("client.pem");
    let (reply, _) = rev(&format!(
        "tls:localhost:{port}:trustRoots={ca}:certificate={client}"
    ))
    .await
    .expect("mTLS");
    assert_eq!(reply, "olleh\n");
    assert!(
        rev(&format!("tls:localhost:{port}:trustRoots={ca}"))
            .await
            .is_err(),
        "no client certificate"
    );
}

/// Run `openssl s_client` against 127.0.0.1:`port`; returns (success, output).
async fn s_client(port: u16, ca: &str, args: &[&str]) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(15),
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                "localhost",
            ])
            .args(["-CAfile", ca, "-verify_return_error"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("s_client finished")
    .expect("s_client ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let connected = text.contains("New, TLSv1");
    (out.status.success() && connected, text)
}

async fn serve(desc: &str) -> (u16, tokio::task::JoinHandle<()>) {
    let mut l: Box<dyn Listener> = build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .expect("builds")
        .listen()
        .await
        .expect("listens");
    let port = l.local_addr().expect("bound").ip().expect("ip").port();
    let task = tokio::spawn(async move {
        while let Ok(conn) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn s_client_against_our_server() {
    if !endpoints_conformance::peer_program("openssl", "version", "openssl") {
        return;
    }
    let pki = Pki::new("osl-server");
    let (srv, ca, client) = (
        pki.path("server.pem"),
        pki.path("ca.pem"),
        pki.path("client.pem"),
    );
    let legacy = ["-cipher", "DEFAULT@SECLEVEL=0"];

    let (port, _t) = serve(&format!(
        "ssl:0:privateKey={srv}:interface=127.0.0.1:alpn=h2"
    ))
    .await;
    let (ok, out) = s_client(port, &ca, &["-alpn", "h2"]).await;
    assert!(ok, "modern client refused:\n{out}");
    assert!(out.contains("ALPN protocol: h2"), "ALPN not agreed:\n{out}");
    for old in ["-tls1", "-tls1_1"] {
        let (ok, out) = s_client(port, &ca, &[&[old][..], &legacy[..]].concat()).await;
        assert!(!ok, "{old} was accepted:\n{out}");
        assert!(
            out.contains("SSL alert number"),
            "{old}: the server did not refuse with an alert:\n{out}"
        );
    }

    let (port, _t) = serve(&format!(
        "ssl:0:privateKey={srv}:interface=127.0.0.1:sslmethod=TLSv1_2_METHOD"
    ))
    .await;
    let (ok, out) = s_client(port, &ca, &["-tls1_3"]).await;
    assert!(
        !ok && out.contains("SSL alert number"),
        "TLSv1_2_METHOD accepted TLS 1.3:\n{out}"
    );
    let (ok, out) = s_client(port, &ca, &["-tls1_2"]).await;
    assert!(
        ok && out.contains("New, TLSv1.2"),
        "TLSv1_2_METHOD refused TLS 1.2:\n{out}"
    );

    let (port, _t) = serve(&format!(
        "ssl:0:privateKey={srv}:interface=127.0.0.1:clientCA={ca}"
    ))
    .await;
    let (ok, out) = s_client(port, &ca, &["-cert", &client, "-key", &client]).await;
    assert!(ok, "client with a certificate refused:\n{out}");
    // Without a certificate: in TLS 1.3 the refusal arrives as an alert after the client's
    // Finished, so send a line to see it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'x\\n' | timeout 10 openssl s_client -connect 127.0.0.1:{port} -servername localhost -CAfile {ca} -ign_eof 2>&1"
        ))
        .output()
        .await
        .expect("s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("alert certificate required") || text.contains("SSL alert number 116"),
        "served without a client certificate:\n{text}"
    );
}

#[tokio::test]
async fn a_server_with_only_old_tls_is_named_in_words() {
    if !endpoints_conformance::peer_program("openssl", "version", "openssl") {
        return;
    }
    let pki = Pki::new("osl-old");
    let (cert, key, ca) = (
        pki.path("server-cert.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    );
    let port = free_port();
    // TLS 1.1 only (OpenSSL needs security level 0 for it).
    let _srv = s_server(
        port,
        &[
            "-cert",
            &cert,
            "-key",
            &key,
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ],
    )
    .await;
    let e = rev(&format!("tls:localhost:{port}:trustRoots={ca}"))
        .await
        .expect_err("TLS 1.1 only");
    assert!(
        e.to_string()
            .contains("the server offers no TLS version this client speaks (1.2 or 1.3"),
        "{e}"
    );
}

#[tokio::test]
async fn the_server_is_told_why_its_certificate_was_refused() {
    if !endpoints_conformance::peer_program("openssl", "version", "openssl") {
        return;
    }
    let pki = Pki::new("osl-alert");
    let (cert, key) = (pki.path("server-cert.pem"), pki.path("server-key.pem"));
    let log = pki.dir.join("s_server.log");
    let port = free_port();
    let mut child = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-rev"])
        .args(["-cert", &cert, "-key", &key])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(pki.dir.join("s_server.err")).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("start s_server");
    // Ready when it prints ACCEPT (bounded: 100 x 100 ms).
    for _ in 0..100 {
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("ACCEPT")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Words for the person, and the precise alert for the server: unknown CA.
    let e = rev(&format!(
        "tls:localhost:{port}:trustRoots={}",
        pki.path("other-ca.pem")
    ))
    .await
    .expect_err("unknown CA");
    assert!(e.to_string().contains("which is not in"), "{e}");
    let mut seen = String::new();
    for _ in 0..100 {
        seen = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(pki.dir.join("s_server.err")).unwrap_or_default();
        if seen.contains("unknown ca") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill().await;
    assert!(seen.contains("unknown ca"), "s_server saw:\n{seen}");
}

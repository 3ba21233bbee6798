//! Every way a `tls:` connect fails, read as a person would: what is wrong, what to do.

use crate::common;
use common::Pki;
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Address, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use endpoints_tcp as _;
use endpoints_tls as _;

fn port_of(a: &Address) -> u16 {
    a.ip().map(|s| s.port()).expect("an IP listener")
}

/// An `ssl:` server with `key_file` (key and certificate) on 127.0.0.1, echoing; its port.
async fn ssl_server(key_file: &str) -> (u16, tokio::task::JoinHandle<()>) {
    let desc = format!("ssl:0:privateKey={key_file}:interface=127.0.0.1");
    let mut l: Box<dyn Listener> = build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = port_of(&l.local_addr().expect("bound"));
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

/// The error of connecting to `desc`.
async fn refusal(desc: &str) -> String {
    let client = build_client(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    match client.connect().await {
        Ok(_) => panic!("`{desc}` connected"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn unknown_issuer_names_the_trust_set_and_suggests_trust_roots() {
    let pki = Pki::new("err-issuer");
    let (port, _srv) = ssl_server(&pki.path("server.pem")).await;
    let other = pki.path("other-ca.pem");
    let e = refusal(&format!("tls:localhost:{port}:trustRoots={other}")).await;
    assert!(
        e.starts_with(&format!(
            "cannot connect to `tls:host=localhost:port={port}"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "the server's certificate `rcgen self signed cert` was issued by `endpoints test CA`, which is not in `{other}`: give the CA that issued it in `trustRoots=`"
        )),
        "{e}"
    );
    // The default set: the platform's store (or Mozilla's when it is empty), named.
    let e = refusal(&format!("tls:localhost:{port}")).await;
    assert!(
        e.contains("which is not in the system's trust store")
            || e.contains("which is not in SSL_CERT_")
            || e.contains("which is not in Mozilla's roots (compiled in"),
        "{e}"
    );
    assert!(
        e.contains("to trust a private CA, give its certificate with `trustRoots=ca.pem`"),
        "{e}"
    );
    // trustRoots=mozilla says so.
    let e = refusal(&format!("tls:localhost:{port}:trustRoots=mozilla")).await;
    assert!(
        e.contains("which is not in Mozilla's roots (trustRoots=mozilla)"),
        "{e}"
    );
}

#[tokio::test]
async fn wrong_host_name_lists_the_certificate_names() {
    let pki = Pki::new("err-name");
    let (port, _srv) = ssl_server(&pki.path("server.pem")).await;
    let ca = pki.path("ca.pem");
    let e = refusal(&format!(
        "tls:localhost:{port}:trustRoots={ca}:sni=db.example"
    ))
    .await;
    assert!(
        e.contains("the server's certificate is for `localhost`, `127.0.0.1`, `::1`, not `db.example`: connect using one of those names (or set `sni=` to the name to check)"),
        "{e}"
    );
}

#[tokio::test]
async fn expired_certificate_says_when() {
    let pki = Pki::new("err-expired");
    let (port, _srv) = ssl_server(&pki.path("expired.pem")).await;
    let ca = pki.path("ca.pem");
    let e = refusal(&format!("tls:localhost:{port}:trustRoots={ca}")).await;
    assert!(
        e.contains("expired on 2002-01-01 00:00:00 UTC (it is now "),
        "{e}"
    );
    assert!(e.contains("renew it on the server"), "{e}");
}

#[tokio::test]
async fn ca_certificate_as_server_certificate_says_how_to_trust_it() {
    let pki = Pki::new("err-ca-leaf");
    let (port, _srv) = ssl_server(&pki.path("self-ca-server.pem")).await;
    // Not listed in trustRoots (another CA is): refused, with the way out.
    let e = refusal(&format!(
        "tls:localhost:{port}:trustRoots={}",
        pki.path("ca.pem")
    ))
    .await;
    assert!(
        e.contains("the server presents a CA certificate `localhost` (basicConstraints CA:TRUE) as its own certificate: if it is a self-signed certificate you trust, list it in `trustRoots=`"),
        "{e}"
    );
    assert!(!e.contains("OtherError"), "{e}");
}

#[tokio::test]
async fn a_server_that_closes_at_once_does_not_speak_tls() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    // It reads what the client sends, then closes: the client sees the end of the stream.
    let _srv = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut hello = [0u8; 4096];
            let _ = s.read(&mut hello).await;
        }
    });
    let e = refusal(&format!("tls:localhost:{port}:trustRoots=mozilla")).await;
    // (If the hello was not read whole, the kernel sends a reset instead of the end.)
    assert!(
        e.contains("the server closed the connection at once, without a TLS handshake: it may not speak TLS on this port")
            || e.contains("the server reset the connection at once, without a TLS handshake"),
        "{e}"
    );
    assert!(!e.contains("tls handshake eof"), "{e}");

    // A server that closes without reading: the client sees a reset (or the end).
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let _srv = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    let e = refusal(&format!("tls:localhost:{port}:trustRoots=mozilla")).await;
    assert!(
        e.contains("without a TLS handshake") && e.contains("it may not speak TLS on this port"),
        "{e}"
    );
}

#[tokio::test]
async fn a_plain_text_banner_is_shown() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let _srv = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"220 smtp ready\r\n").await;
                // Keep the connection open until the client gives up.
                let mut buf = [0u8; 512];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    let e = refusal(&format!("tls:localhost:{port}:trustRoots=mozilla")).await;
    assert!(
        e.contains(r#"the server does not speak TLS on this port: it answered "220 smtp ready\r\n" (plain text?): connect with `tcp:` instead"#),
        "{e}"
    );
    assert!(!e.contains("InvalidContentType"), "{e}");
}

#[tokio::test]
async fn a_refused_connect_names_the_tls_description() {
    // A port nobody listens on: bind one, note it, close it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let e = refusal(&format!("tls:127.0.0.1:{port}:trustRoots=mozilla")).await;
    assert!(
        e.starts_with(&format!(
            "cannot connect to `tls:host=127.0.0.1:port={port}"
        )),
        "{e}"
    );
    assert!(!e.contains("hostname:"), "{e}");
    assert!(e.to_lowercase().contains("refused"), "{e}");
    // Through `endpoint=`: the inner description the user wrote is quoted after the outer.
    let e = refusal(&format!(
        "tls:localhost:{port}:trustRoots=mozilla:endpoint=tcp\\:127.0.0.1\\:{port}"
    ))
    .await;
    assert!(
        e.starts_with(&format!(
            "cannot connect to `tls:host=localhost:port={port}:timeout=30:trustRoots=mozilla:endpoint=tcp\\:"
        )) && e.contains("`: cannot connect to `tcp:"),
        "{e}"
    );
}

//! Errors that carry the fix for what people type (issue 23 item 6): a server's parameters
//! on a client, and a client to a socket whose directory is missing.

use std::io;

use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{Description, ErrorKind, ParseError};

use endpoints_unix as _;

fn d(s: &str) -> Description {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn client_error(s: &str) -> ParseError {
    build_client(&d(s)).map(|_| ()).expect_err(s)
}

#[test]
fn a_client_given_the_servers_address_suggests_path() {
    let text = "unix:address=/run/app.sock";
    let e = client_error(text);
    assert_eq!(e.kind(), ErrorKind::UnknownParameter);
    assert_eq!(e.span(), 5..12);
    assert_eq!(e.parameter(), Some("address"));
    assert_eq!(e.suggestion(), Some("path"));
    assert_eq!(
        e.message(),
        "unknown parameter `address` for a `unix` client: `address` is a parameter of `unix` \
         servers; did you mean `path`?"
    );
    assert!(build_client(&d("unix:path=/run/app.sock")).is_ok());
    // A server-only parameter says so, and what a client takes.
    let e = client_error("unix:/run/app.sock:mode=600");
    assert_eq!((e.span(), e.parameter()), (19..23, Some("mode")));
    assert_eq!(
        e.message(),
        "unknown parameter `mode` for a `unix` client: `mode` is a parameter of `unix` servers \
         only (a client takes: path, timeout, lockfile, checkPID)"
    );
    // The other way round: the client's `path` on a server.
    let e = build_server(&d("unix:path=/run/app.sock"))
        .map(|_| ())
        .expect_err("client parameter");
    assert_eq!(e.suggestion(), Some("address"));
}

/// A fresh directory for one test.
fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("endpoints-unix-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

async fn connect_error(path: &std::path::Path) -> io::Error {
    let text = format!("unix:{}", path.display());
    let endpoint = build_client(&d(&text)).unwrap_or_else(|e| panic!("{e}"));
    endpoint.connect().await.map(|_| ()).expect_err(&text)
}

#[tokio::test]
async fn a_client_to_a_missing_directory_names_it() {
    let base = dir("missing-dir");
    let missing = base.join("not-there");
    let path = missing.join("app.sock");
    let e = connect_error(&path).await;
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let shown = e.to_string();
    assert!(
        shown.contains(&format!(
            "the directory {} does not exist, so there is no socket {}",
            missing.display(),
            path.display()
        )),
        "{shown}"
    );
    assert!(
        shown.starts_with("cannot connect to `unix:path="),
        "{shown}"
    );
    assert!(!shown.contains("os error"), "not a bare ENOENT: {shown}");

    // The directory exists, the socket does not.
    let path = base.join("app.sock");
    let e = connect_error(&path).await;
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(
        e.to_string().contains(&format!(
            "no socket at {}: nothing listens there (the directory exists)",
            path.display()
        )),
        "{e}"
    );
    // A file where the directory should be.
    let file = base.join("file");
    std::fs::write(&file, b"").expect("file");
    let e = connect_error(&file.join("app.sock")).await;
    assert!(
        e.to_string()
            .contains(&format!("{} is not a directory", file.display())),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

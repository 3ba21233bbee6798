//! Issue 25, item 2: `fd:` adopts a passed listening socket by number or by name, whatever
//! its family, says what a descriptor is when it is not a listening stream socket (and leaves
//! it open), and registers what it adopted for the next handover. One binary of its own: the
//! activation state is process-wide.

use std::os::fd::{AsRawFd, OwnedFd};

use endpoints_core::registry::build_server;
use endpoints_core::{Address, ServerEndpoint};
use endpoints_systemd::Activation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn server(desc: &str) -> Box<dyn ServerEndpoint> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn fd_adopts_by_number_or_name_and_says_what_a_wrong_descriptor_is() {
    let dir = std::env::temp_dir().join(format!("endpoints-fd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");

    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let tcp_addr = tcp.local_addr().expect("addr");
    let tcp_fd = tcp.as_raw_fd();
    let path = dir.join("s.sock");
    let unix = std::os::unix::net::UnixListener::bind(&path).expect("bind unix");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let udp_fd = udp.as_raw_fd();
    let (reader, writer) = std::io::pipe().expect("pipe");
    let pipe_fd = reader.as_raw_fd();
    let peer = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let connected =
        std::net::TcpStream::connect(peer.local_addr().expect("addr")).expect("connect");
    let connected_fd = connected.as_raw_fd();
    let file = std::fs::File::create(dir.join("plain")).expect("file");
    let file_fd = file.as_raw_fd();
    let fds: Vec<OwnedFd> = vec![
        tcp.into(),
        unix.into(),
        udp.into(),
        reader.into(),
        connected.into(),
        file.into(),
    ];
    let names = ["web", "app", "dgram", "pipe", "conn", "file"]
        .map(String::from)
        .to_vec();
    Activation::with_descriptors(fds, names)
        .expect("names")
        .install();

    // What each wrong descriptor is, in words; and it stays open (adoptable, not closed).
    for (desc, what) in [
        (format!("fd:{udp_fd}"), "an IPv4 datagram socket"),
        ("fd:name=pipe".to_owned(), "a pipe"),
        (
            format!("fd:{connected_fd}"),
            "an IPv4 stream socket that is not listening",
        ),
        ("fd:name=file".to_owned(), "a regular file"),
    ] {
        let err = server(&desc).listen().await.expect_err(&desc);
        assert!(
            err.to_string().contains(what)
                && err.to_string().contains("not a listening stream socket"),
            "{desc}: {err}"
        );
    }
    assert!(std::fs::metadata(format!("/proc/self/fd/{pipe_fd}")).is_ok());
    assert!(std::fs::metadata(format!("/proc/self/fd/{file_fd}")).is_ok());

    // By number: the TCP socket itself.
    let mut web = server(&format!("fd:{tcp_fd}"))
        .listen()
        .await
        .expect("adopt by number");
    assert_eq!(web.local_addr().expect("addr"), Address::Ip(tcp_addr));
    let client = tokio::spawn(async move {
        let mut c = tokio::net::TcpStream::connect(tcp_addr)
            .await
            .expect("connect");
        c.write_all(b"hi").await.expect("write");
        c.shutdown().await.expect("shutdown");
    });
    let mut conn = web.accept().await.expect("accept");
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, b"hi");
    client.await.expect("client");

    // By name: the unix socket, whose file is never removed by us.
    let app = server("fd:name=app").listen().await.expect("adopt by name");
    assert_eq!(app.local_addr().expect("addr"), Address::Unix(path.clone()));

    // Both are passed on by a handover, under their descriptions' names.
    let passed: Vec<String> = endpoints_util::handover::listeners()
        .expect("listeners")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(
        passed.contains(&format!(
            "{}#0",
            endpoints_util::handover::key(&format!("fd:fd={tcp_fd}"))
        )),
        "{passed:?}"
    );
    assert!(
        passed.contains(&format!(
            "{}#0",
            endpoints_util::handover::key("fd:name=app")
        )),
        "{passed:?}"
    );

    // A second adoption of the same descriptor is refused.
    let err = server("fd:name=web").listen().await.expect_err("taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    app.close().await.expect("close");
    assert!(path.exists(), "an adopted unix socket's file is left alone");
    web.close().await.expect("close");
    drop(writer);

    // A number that was not passed is an error when the description is built.
    let d = "fd:1".parse().expect("parses");
    let err = build_server(&d).expect_err("stdout was not passed");
    assert!(
        err.to_string()
            .contains("was not passed by the LISTEN_FDS protocol"),
        "{err}"
    );
    let d = "fd:name=web:fd=3".parse().expect("parses");
    let err = build_server(&d).expect_err("both");
    assert!(err.to_string().contains("exactly one"), "{err}");
    let d = "fd".parse().expect("parses");
    let err = build_server(&d).expect_err("neither");
    assert!(
        err.to_string().contains("needs a descriptor number"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

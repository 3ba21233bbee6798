//! Descriptors handed to the activation state are owned by it (issue 13, item 9): a failed
//! adoption leaves the descriptor open and owned there, an adopted one is never offered
//! again, and no later `listen()` closes a descriptor that reused its number. One test: the
//! activation state is process-wide.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use endpoints_core::registry::build_server;
use endpoints_core::{Address, ServerEndpoint};
use endpoints_systemd::Activation;

fn server(desc: &str) -> Box<dyn ServerEndpoint> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn failed_adoption_never_closes_and_taken_descriptors_are_never_offered_again() {
    let web = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = web.local_addr().expect("addr").port();
    let number = web.as_raw_fd();
    Activation::with_descriptors(vec![OwnedFd::from(web)], vec!["web".into()])
        .expect("one name for one descriptor")
        .install();

    // The wrong family: refused, and the descriptor is still open and still ours to adopt.
    let err = server("systemd:domain=UNIX:name=web")
        .listen()
        .await
        .expect_err("an AF_INET socket is not AF_UNIX");
    assert!(
        err.to_string()
            .contains(&format!("descriptor {number} is an AF_INET socket")),
        "{err}"
    );
    let other = std::fs::File::open("/proc/self/status").expect("open");
    assert_ne!(
        other.as_raw_fd(),
        number,
        "the failed adoption closed descriptor {number}"
    );

    // The right family adopts that very socket.
    let endpoint = server("systemd:domain=INET:name=web");
    let listener = endpoint.listen().await.expect("adopt");
    assert_eq!(
        listener.local_addr().expect("addr"),
        Address::Ip(([127, 0, 0, 1], port).into())
    );
    listener.close().await.expect("close");

    // Its number is free now; a new file may take it. A later listen() must refuse without
    // touching that file.
    let mut reused = std::fs::File::open("/proc/self/status").expect("open");
    let err = endpoint.listen().await.expect_err("already adopted");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    let err = server("systemd:domain=INET:index=0")
        .listen()
        .await
        .expect_err("already adopted");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    let mut text = String::new();
    reused
        .read_to_string(&mut text)
        .expect("the file that took the number is still open");
    assert!(text.contains("Pid:"), "{text}");

    // A described-only state (numbers, no ownership) builds endpoints but adopts nothing.
    let probe = std::fs::File::open("/proc/self/status").expect("open");
    Activation::described(vec![probe.as_raw_fd()], vec!["web".into()])
        .expect("described")
        .install();
    let err = server("systemd:domain=INET:name=web")
        .listen()
        .await
        .expect_err("not owned");
    assert!(err.to_string().contains("only described"), "{err}");
    assert!(
        probe.metadata().is_ok(),
        "the described descriptor is still open"
    );
}

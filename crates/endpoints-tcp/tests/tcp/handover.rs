//! Issue 25, item 1: a `tcp:` listener adopts the socket a previous process handed over for
//! its description instead of binding; two listeners on one description (port 0) each get
//! their own; the adopted socket is made non-blocking and close-on-exec; one bound elsewhere
//! is refused with both addresses.

use std::os::fd::{AsRawFd, OwnedFd};

use endpoints_core::Address;
use endpoints_core::registry::build_server;
use endpoints_util::handover;

/// The `flags:` line of `/proc/self/fdinfo/FD` (octal).
fn fd_flags(fd: i32) -> u32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).expect("fdinfo");
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .expect("a flags line");
    u32::from_str_radix(line.trim(), 8).expect("octal")
}

#[tokio::test]
async fn listeners_adopt_their_handed_over_sockets_in_order() {
    // A backlog no other test uses: the names count listeners per description, process-wide.
    let d = "tcp:0:interface=127.0.0.1:backlog=77"
        .parse()
        .expect("description");
    let endpoint = build_server(&d).expect("endpoint");
    let base = handover::key(&endpoint.to_string());
    // Blocking, as inherited sockets arrive (tokio refuses those).
    let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (pa, pb) = (a.local_addr().expect("addr"), b.local_addr().expect("addr"));
    let fa = a.as_raw_fd();
    handover::offer(format!("{base}#0"), OwnedFd::from(a));
    handover::offer(format!("{base}#1"), OwnedFd::from(b));

    let first = endpoint.listen().await.expect("adopt the first");
    let second = endpoint.listen().await.expect("adopt the second");
    assert_eq!(first.local_addr().expect("addr"), Address::Ip(pa));
    assert_eq!(second.local_addr().expect("addr"), Address::Ip(pb));
    assert!(
        first.to_string().contains(&format!("port={}", pa.port())),
        "{first}"
    );
    let flags = fd_flags(fa);
    assert_ne!(
        flags & libc::O_NONBLOCK as u32,
        0,
        "non-blocking: {flags:o}"
    );
    assert_ne!(
        flags & libc::O_CLOEXEC as u32,
        0,
        "close-on-exec: {flags:o}"
    );

    // Both are passed on by the next handover, under the same names.
    let names: Vec<String> = handover::listeners()
        .expect("listeners")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&format!("{base}#0")), "{names:?}");
    assert!(names.contains(&format!("{base}#1")), "{names:?}");

    // A third listener has nothing inherited: it binds a port of its own.
    let third = endpoint.listen().await.expect("bind");
    let Address::Ip(p3) = third.local_addr().expect("addr") else {
        panic!("an IP address");
    };
    assert!(p3.port() != pa.port() && p3.port() != pb.port());
    first.close().await.expect("close");
    second.close().await.expect("close");
    third.close().await.expect("close");
    let names: Vec<String> = handover::listeners()
        .expect("listeners")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(&base)),
        "closed listeners are not passed on: {names:?}"
    );

    // A socket on another address than the description's is refused, naming both.
    let d = "tcp:0:interface=127.0.0.1:backlog=78"
        .parse()
        .expect("description");
    let endpoint = build_server(&d).expect("endpoint");
    let elsewhere = std::net::TcpListener::bind("[::1]:0")
        .or_else(|_| std::net::TcpListener::bind("127.0.0.2:0"))
        .expect("bind");
    let at = elsewhere.local_addr().expect("addr");
    handover::offer(
        format!("{}#0", handover::key(&endpoint.to_string())),
        OwnedFd::from(elsewhere),
    );
    let err = endpoint.listen().await.expect_err("another address");
    assert!(
        err.to_string().contains(&format!("is bound to {at}")),
        "{err}"
    );
}

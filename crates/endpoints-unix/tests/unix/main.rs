//! The integration tests of this crate, in one binary (fewer to link): each former test
//! file is a module. Tests that change process-wide state (limits, umask, environment,
//! a global provider, counts of open descriptors) stay in binaries of their own.

mod hints;
mod takeover;
mod unix;

/// A socket file nothing listens on (a server that died): bound, never listening. Not a
/// listener that is then closed: a test of this binary that starts a child process at that
/// moment holds the listener open between its fork and its exec, and the socket would still
/// accept (a flaky "in use").
fn stale_socket(path: &std::path::Path) {
    let s =
        socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).expect("socket");
    s.bind(&socket2::SockAddr::unix(path).expect("path"))
        .expect("bind");
}

//! Twisted's `autobahn:` endpoint (autobahn[twisted]) as the peer, both directions, in its
//! two modes: bytes as binary messages (`binary`) or as Base64 in text messages (`base64`).

use endpoints_ws::WsInfo;

use crate::common::{Py, connect, echo, listen, payload, port_of, round_trip, within};

/// A Twisted echo server on `autobahn:tcp:0` (its port printed first).
const SERVER: &str = r#"
from twisted.internet import reactor, endpoints, protocol

class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)

f = protocol.Factory.forProtocol(Echo)
ep = endpoints.serverFromString(reactor, r"autobahn:tcp\:0\:interface\=127.0.0.1:url=ws\://127.0.0.1")
def listening(port):
    print(port.getHost().port, flush=True)
ep.listen(f).addCallback(listening)
reactor.run()
"#;

/// A Twisted client on `autobahn:tcp:127.0.0.1:PORT`: sends 1 MiB in 64 KiB writes, checks
/// the echo, prints `ok` or `bad`, closes.
const CLIENT: &str = r#"
import os, sys
from twisted.internet import reactor, endpoints, protocol

port = sys.argv[1]
data = os.urandom(1 << 20)

class Check(protocol.Protocol):
    def connectionMade(self):
        self.got = b""
        for i in range(0, len(data), 65536):
            self.transport.write(data[i:i + 65536])
    def dataReceived(self, d):
        self.got += d
        if len(self.got) >= len(data):
            print("ok" if self.got == data else "bad", flush=True)
            self.transport.loseConnection()
    def connectionLost(self, reason):
        if reactor.running:
            reactor.stop()

desc = r"autobahn:tcp\:127.0.0.1\:%s:url=ws\://127.0.0.1\:%s/" % (port, port)
ep = endpoints.clientFromString(reactor, desc)
def failed(f):
    print("failed", f.getErrorMessage(), flush=True)
    reactor.stop()
ep.connect(protocol.Factory.forProtocol(Check)).addErrback(failed)
reactor.callLater(20, reactor.stop)
reactor.run()
"#;

/// Whether autobahn's Twisted endpoint is importable: skip with a reason, fail under CI=true.
fn autobahn() -> bool {
    let ok = std::process::Command::new("python3")
        .args([
            "-c",
            "import autobahn.twisted.websocket, twisted.internet.endpoints",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "autobahn is missing and CI=true: pip install \"autobahn[twisted]\""
        );
        println!("skipping: autobahn not importable (pip install \"autobahn[twisted]\")");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_through_a_twisted_autobahn_echo_in_both_modes() {
    if !autobahn() {
        return;
    }
    let mut py = Py::run(SERVER, &[]);
    let port: u16 = py.line().await.parse().expect("port");
    for mode in ["binary", "base64"] {
        let conn = connect(&format!("ws:127.0.0.1:{port}:subprotocols={mode}")).await;
        let chosen = conn
            .extensions()
            .get::<WsInfo>()
            .and_then(|i| i.subprotocol.clone());
        assert_eq!(chosen.as_deref(), Some(mode));
        let data = payload(1 << 20);
        let back = round_trip(conn, &data).await;
        assert!(back == data, "{mode}: the echo differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twisted_autobahn_client_through_our_server_in_both_modes() {
    if !autobahn() {
        return;
    }
    // autobahn offers `binary, base64`; the server's list picks the mode.
    for mode in ["binary", "base64"] {
        let l = listen(&format!("ws:subprotocols={mode}:tcp:0:interface=127.0.0.1")).await;
        let port = port_of(&*l);
        let mut seen = echo(l);
        let mut py = Py::run(CLIENT, &[&port.to_string()]);
        assert_eq!(py.line().await, "ok", "{mode}");
        py.success().await;
        let s = within("report", seen.recv()).await.expect("report");
        assert_eq!(s.info.and_then(|i| i.subprotocol).as_deref(), Some(mode));
        assert_eq!(
            s.end,
            Ok(1 << 20),
            "{mode}: a clean end at autobahn's Close"
        );
    }
}

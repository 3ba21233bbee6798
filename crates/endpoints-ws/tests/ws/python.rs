//! Python `websockets` as the peer, both directions: 16 MiB hashed round trips, Close codes,
//! a peer that ends without Close, subprotocols and headers.

use endpoints_ws::WsInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{
    Py, connect, echo, listen, payload, port_of, round_trip, sha256, websockets, within,
};

/// A `websockets` server on 127.0.0.1 (port printed first), one behaviour per `mode`.
const SERVER: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve

mode = sys.argv[1]

async def handler(ws):
    print("path", ws.request.path, flush=True)
    print("team", ws.request.headers.get("X-Team"), flush=True)
    print("auth", ws.request.headers.get("Authorization"), flush=True)
    print("subprotocol", ws.subprotocol, flush=True)
    if mode == "echo":
        async for m in ws:
            assert isinstance(m, bytes), "a text message from a binary stream"
            await ws.send(m)
    elif mode == "close1011":
        await ws.recv()
        await ws.close(code=1011, reason="it broke")
    elif mode == "bye":
        await ws.send(b"bye")
        await ws.send("text too")
        await ws.close()
    elif mode == "abort":
        await ws.send(b"partial")
        await asyncio.sleep(0.1)
        ws.transport.abort()

async def main():
    async with serve(handler, "127.0.0.1", 0, subprotocols=["binary"] if mode == "echo" else None,
                     max_size=2**24) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

asyncio.run(main())
"#;

/// A `websockets` client of `uri`, one behaviour per `mode`; prints its findings.
const CLIENT: &str = r#"
import asyncio, hashlib, os, sys
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

uri, mode = sys.argv[1], sys.argv[2]

async def main():
    try:
        async with connect(uri, subprotocols=["binary"], max_size=2**24,
                           additional_headers={"Authorization": "Bearer py-token"}) as ws:
            print("subprotocol", ws.subprotocol, flush=True)
            if mode == "roundtrip":
                data = os.urandom(16 << 20)
                async def send():
                    for i in range(0, len(data), 1 << 20):
                        await ws.send(data[i:i + (1 << 20)])
                got = bytearray()
                async def recv():
                    while len(got) < len(data):
                        m = await ws.recv()
                        assert isinstance(m, bytes), "a text message from our binary stream"
                        got.extend(m)
                await asyncio.gather(send(), recv())
                same = hashlib.sha256(data).digest() == hashlib.sha256(bytes(got)).digest()
                print("hashes", "equal" if same else "differ", flush=True)
                await ws.close()
                print("closed", ws.close_code, flush=True)
            elif mode == "text":
                await ws.send("héllo ")
                await ws.send(b"world")
                await ws.close()
            elif mode == "close1008":
                await ws.send(b"x")
                await ws.close(code=1008, reason="not allowed")
            elif mode == "serverclose":
                m = await ws.recv()
                print("got", m.decode(), flush=True)
                await ws.wait_closed()
                print("closed", ws.close_code, flush=True)
    except InvalidStatus as e:
        print("status", e.response.status_code, flush=True)

asyncio.run(main())
"#;

async fn py_server(mode: &str) -> (Py, u16) {
    let mut py = Py::run(SERVER, &[mode]);
    let port = py.line().await.parse().expect("port");
    (py, port)
}

/// The handler's four report lines: path, X-Team, Authorization, subprotocol.
async fn request_lines(py: &mut Py) -> Vec<String> {
    let mut v = Vec::new();
    for _ in 0..4 {
        v.push(py.line().await);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_round_trips_16_mib_through_a_python_echo() {
    if !websockets() {
        return;
    }
    let (mut py, port) = py_server("echo").await;
    let conn = connect(&format!(
        "ws:127.0.0.1:{port}:path=/echo?x=1:subprotocols=binary:headers=X-Team=blue:token=tok"
    ))
    .await;
    assert_eq!(
        conn.extensions()
            .get::<WsInfo>()
            .and_then(|i| i.subprotocol.clone())
            .as_deref(),
        Some("binary")
    );
    let data = payload(16 << 20);
    let back = round_trip(conn, &data).await;
    assert_eq!(
        sha256(&back),
        sha256(&data),
        "the 16 MiB came back different"
    );
    assert_eq!(
        request_lines(&mut py).await,
        [
            "path /echo?x=1",
            "team blue",
            "auth Bearer tok",
            "subprotocol binary"
        ]
    );
}

#[tokio::test]
async fn a_python_close_with_an_error_code_is_a_read_error() {
    if !websockets() {
        return;
    }
    let (_py, port) = py_server("close1011").await;
    let mut conn = connect(&format!("ws:127.0.0.1:{port}")).await;
    conn.write_all(b"go").await.expect("write");
    let mut got = Vec::new();
    let e = within("read", conn.read_to_end(&mut got))
        .await
        .expect_err("Close 1011 is not a clean end");
    let shown = e.to_string();
    assert!(
        shown.contains("1011") && shown.contains("it broke"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_python_normal_close_is_a_clean_end_after_its_data() {
    if !websockets() {
        return;
    }
    let (_py, port) = py_server("bye").await;
    let mut conn = connect(&format!("ws:127.0.0.1:{port}")).await;
    let mut got = Vec::new();
    within("read", conn.read_to_end(&mut got))
        .await
        .expect("a clean end");
    // A text message's bytes are part of the stream too.
    assert_eq!(got, b"byetext too");
}

#[tokio::test]
async fn a_python_server_that_ends_without_close_is_a_read_error() {
    if !websockets() {
        return;
    }
    let (_py, port) = py_server("abort").await;
    let mut conn = connect(&format!("ws:127.0.0.1:{port}")).await;
    let mut got = Vec::new();
    let e = within("read", conn.read_to_end(&mut got))
        .await
        .expect_err("an end without Close is not clean");
    assert_eq!(got, b"partial");
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    assert!(e.to_string().contains("1006"), "{e}");
}

async fn py_client(port: u16, path: &str, mode: &str) -> Py {
    Py::run(CLIENT, &[&format!("ws://127.0.0.1:{port}{path}"), mode])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_round_trips_16_mib_through_our_server() {
    if !websockets() {
        return;
    }
    let l = listen("ws:path=/t:subprotocols=binary:token=py-token:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let mut seen = echo(l);
    let mut py = py_client(port, "/t", "roundtrip").await;
    assert_eq!(py.line().await, "subprotocol binary");
    assert_eq!(py.line().await, "hashes equal");
    assert_eq!(py.line().await, "closed 1000");
    py.success().await;
    let s = within("report", seen.recv()).await.expect("report");
    assert_eq!(s.end, Ok(16 << 20), "a clean end at Python's Close");
    let info = s.info.expect("info");
    assert_eq!(info.header("authorization"), Some("Bearer py-token"));
}

#[tokio::test]
async fn python_text_and_binary_messages_are_one_stream_on_our_server() {
    if !websockets() {
        return;
    }
    let l = listen("ws:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let mut seen = echo(l);
    let py = py_client(port, "/", "text").await;
    py.success().await;
    let s = within("report", seen.recv()).await.expect("report");
    assert_eq!(s.end, Ok("héllo world".len()));
}

#[tokio::test]
async fn a_python_close_with_1008_is_a_read_error_on_our_server() {
    if !websockets() {
        return;
    }
    let l = listen("ws:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let mut seen = echo(l);
    let py = py_client(port, "/", "close1008").await;
    py.success().await;
    let e = within("report", seen.recv())
        .await
        .expect("report")
        .end
        .expect_err("1008");
    assert!(e.contains("1008") && e.contains("not allowed"), "{e}");
}

#[tokio::test]
async fn our_shutdown_is_a_normal_close_python_sees() {
    if !websockets() {
        return;
    }
    let mut l = listen("ws:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let mut py = py_client(port, "/", "serverclose").await;
    let mut conn = within("accept", l.accept()).await.expect("accept");
    conn.write_all(b"hi").await.expect("write");
    conn.shutdown().await.expect("Close");
    // Reading goes on to Python's Close reply: a clean end.
    let mut rest = Vec::new();
    within("read to Python's Close", conn.read_to_end(&mut rest))
        .await
        .expect("clean end");
    assert_eq!(py.line().await, "subprotocol None");
    assert_eq!(py.line().await, "got hi");
    drop(conn);
    assert_eq!(py.line().await, "closed 1000");
    py.success().await;
}

#[tokio::test]
async fn a_python_client_for_another_path_gets_404() {
    if !websockets() {
        return;
    }
    let l = listen("ws:path=/only:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let _seen = echo(l);
    let mut py = py_client(port, "/other", "text").await;
    assert_eq!(py.line().await, "status 404");
    py.success().await;
}

/// A `websockets` client over TLS (`wss://`) trusting `ca`: sends 1 MiB, checks the echo.
const TLS_CLIENT: &str = r#"
import asyncio, os, ssl, sys
from websockets.asyncio.client import connect

uri, ca = sys.argv[1], sys.argv[2]

async def main():
    ctx = ssl.create_default_context(cafile=ca)
    data = os.urandom(1 << 20)
    async with connect(uri, ssl=ctx, max_size=2**24) as ws:
        for i in range(0, len(data), 1 << 16):
            await ws.send(data[i:i + (1 << 16)])
        got = bytearray()
        while len(got) < len(data):
            got.extend(await ws.recv())
        print("echo", "ok" if bytes(got) == data else "bad", flush=True)

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_wss_client_through_our_tls_server() {
    if !websockets() {
        return;
    }
    let pki = crate::common::pki("py-wss");
    let certs = endpoints_core::escape(&pki.join("certs").display().to_string());
    let l = listen(&format!("ws:path=/s:tls:{certs}:0:interface=127.0.0.1")).await;
    let port = port_of(&*l);
    let mut seen = echo(l);
    let ca = pki.join("ca.pem").display().to_string();
    let mut py = Py::run(TLS_CLIENT, &[&format!("wss://localhost:{port}/s"), &ca]);
    assert_eq!(py.line().await, "echo ok");
    py.success().await;
    let s = within("report", seen.recv()).await.expect("report");
    assert_eq!(s.end, Ok(1 << 20), "a clean end at Python's Close");
}

/// A `websockets` echo server over TLS with `server.pem` (certificate and key); port first.
const TLS_SERVER: &str = r#"
import asyncio, ssl, sys
from websockets.asyncio.server import serve

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1])

async def handler(ws):
    async for m in ws:
        await ws.send(m)

async def main():
    async with serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=2**24) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_wss_client_through_a_python_tls_server() {
    if !websockets() {
        return;
    }
    let pki = crate::common::pki("py-wss-server");
    let mut py = Py::run(TLS_SERVER, &[&pki.join("server.pem").display().to_string()]);
    let port: u16 = py.line().await.parse().expect("port");
    let ca = endpoints_core::escape(&pki.join("ca.pem").display().to_string());
    let conn = connect(&format!("wss:localhost:{port}:trustRoots={ca}")).await;
    let data = payload(4 << 20);
    let back = round_trip(conn, &data).await;
    assert_eq!(sha256(&back), sha256(&data));
}

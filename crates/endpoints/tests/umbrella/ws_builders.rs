//! The `ws` builders: their text builds the same endpoint as the builder.
#![cfg(all(feature = "ws", feature = "tcp", feature = "unix", feature = "tls"))]

use std::time::Duration;

use endpoints::builders::ws::{self, WsOptions};
use endpoints::builders::{ClientBuilder, ServerBuilder, TcpServer, UnixClient};

fn same_client(b: &dyn ClientBuilder) {
    let text = b.to_string();
    let from_text = endpoints::client(&text).unwrap_or_else(|e| panic!("`{text}`:\n{e}"));
    let built = b.build().unwrap_or_else(|e| panic!("`{text}`:\n{e}"));
    assert_eq!(built.to_string(), from_text.to_string(), "{text}");
}

#[test]
fn ws_client_builders_equal_their_text() {
    let token = std::env::temp_dir().join(format!("endpoints-ws-builder-{}", std::process::id()));
    std::fs::write(&token, "t0k\n").expect("token file");
    let opts = WsOptions::new("example.com")
        .port(8080)
        .path("/chat?room=1")
        .origin("https://app.example")
        .host_header("front.example")
        .subprotocols(["v2", "v1"])
        .header("X-Team", "blue")
        .token_file(token.display().to_string())
        .timeout(Duration::from_millis(2500))
        .max_message(1 << 20)
        .ping(Duration::from_secs(20));
    let plain = ws::client(opts.clone());
    assert!(
        plain
            .to_string()
            .starts_with("ws:host=example.com:port=8080:path=/chat?room=1"),
        "{plain}"
    );
    same_client(&plain);
    let secure = ws::secure_client(opts.clone().trust_roots("mozilla").sni("front.example"));
    assert!(
        secure
            .to_string()
            .starts_with("wss:host=example.com:port=8080:"),
        "{secure}"
    );
    same_client(&secure);
    same_client(&ws::wrap_client(opts, UnixClient::new("/run/ws.sock")));
    assert_eq!(
        ws::client(WsOptions::new("h")).to_string(),
        "ws:host=h:port=80:path=/:timeout=30:maxMessage=16777216"
    );
}

#[test]
fn ws_server_builder_equals_its_text() {
    let b = ws::wrap_server(TcpServer::new(8080))
        .path("/t")
        .origins(["https://a.example", "https://b.example"])
        .subprotocols(["binary"])
        .timeout(Duration::from_secs(3));
    let text = b.to_string();
    assert!(
        text.starts_with("ws:path=/t:origins=https\\://a.example,https\\://b.example:"),
        "{text}"
    );
    let from_text = endpoints::server(&text).unwrap_or_else(|e| panic!("`{text}`:\n{e}"));
    assert_eq!(
        b.build().expect("builds").to_string(),
        from_text.to_string()
    );
}

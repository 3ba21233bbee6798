//! The `tor`/`onion` builders: their text builds the same endpoint as the builder.
#![cfg(feature = "tor")]

use std::time::Duration;

use endpoints::builders::{ClientBuilder, OnionServer, ServerBuilder, TorClient};

#[test]
fn tor_builders_equal_their_text() {
    let clients = [
        TorClient::new("example.com", 80),
        TorClient::new(
            "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
            443,
        )
        .socks_port(9150)
        .isolation("app")
        .timeout(Duration::from_millis(2500))
        .half_close_inband(true),
        TorClient::new("example.com", 80).launch(true),
    ];
    for b in &clients {
        let text = b.to_string();
        let from_text = endpoints::client(&text).unwrap_or_else(|e| panic!("`{text}`:\n{e}"));
        let built = b.build().unwrap_or_else(|e| panic!("`{text}`:\n{e}"));
        assert_eq!(built.to_string(), from_text.to_string(), "{text}");
    }
    assert!(clients[1].to_string().contains("halfClose=inband"));
    assert!(clients[2].to_string().contains("launch=1"));
    let servers = [
        OnionServer::new(80),
        OnionServer::new(443)
            .control_port(9151)
            .private_key_file("/var/lib/app/onion.key")
            .local_tcp(true)
            .timeout(Duration::from_secs(60))
            .half_close_inband(true),
    ];
    for b in &servers {
        let text = b.to_string();
        let from_text = endpoints::server(&text).unwrap_or_else(|e| panic!("`{text}`:\n{e}"));
        let built = b.build().unwrap_or_else(|e| panic!("`{text}`:\n{e}"));
        assert_eq!(built.to_string(), from_text.to_string(), "{text}");
    }
}

//! issue 20 item 3: without `trusted=`, listening warns once (naming the description) that
//! any client can forge its address; `trusted=any` or a list states the policy and is quiet.

use std::sync::{Arc, Mutex};

use endpoints_core::registry::build_server;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use endpoints_proxy as _;
use endpoints_tcp as _;
use endpoints_unix as _;

/// Records every WARN event as its fields, `name=value` joined by spaces.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        if *e.metadata().level() == Level::WARN {
            let mut f = Fields(String::new());
            e.record(&mut f);
            self.0.lock().expect("lock").push(f.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

async fn warnings_when_listening(desc: &str) -> Vec<String> {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let l = build_server(&desc.parse().expect("parse"))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got = capture.0.lock().expect("lock").clone();
    drop(l);
    got
}

#[tokio::test(flavor = "current_thread")]
async fn warns_once_without_trusted_and_not_when_stated() {
    let got = warnings_when_listening("haproxy:tcp:0:interface=127.0.0.1").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("any client"), "{got:?}");
    assert!(
        got[0].contains("trusted=any"),
        "says how to state it: {got:?}"
    );
    assert!(
        got[0].contains("listener=haproxy:") && got[0].contains("tcp:port="),
        "names the description: {got:?}"
    );

    for quiet in [
        "haproxy:trusted=any:tcp:0:interface=127.0.0.1",
        "haproxy:trusted=127.0.0.1:tcp:0:interface=127.0.0.1",
        "haproxy:trusted=[unix,::1]:untrusted=accept:tcp:0:interface=127.0.0.1",
    ] {
        let got = warnings_when_listening(quiet).await;
        assert!(got.is_empty(), "{quiet}: {got:?}");
    }
}

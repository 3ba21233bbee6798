//! `endpoints check` and `endpoints types` with `acme:` (issue 17): parameters are
//! validated without network access and without touching `cache=`.

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_endpoints");

fn run(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env("HTTPS_PROXY", "http://127.0.0.1:9") // any network use would fail, not hang
        .output()
        .expect("run endpoints");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_validates_acme_without_network_or_files() {
    let cache = std::env::temp_dir().join(format!("endpoints-cli-acme-{}", std::process::id()));
    let desc = format!(
        "acme:domains=example.com,www.example.com:cache={}:contact=mailto\\:ops@example.com:tcp:443",
        cache.display()
    );
    let (code, out) = run(&["check", "--server", "--json", &desc]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["type"], "acme");
    assert_eq!(v["params"]["directory"], "letsencrypt");
    assert_eq!(v["params"]["contact"], "mailto:ops@example.com");
    assert_eq!(v["wrapped"]["type"], "tcp");
    assert!(!cache.exists(), "check created the cache directory");

    let bad = desc.replace("tcp:443", "directory=ftp\\://x/dir:tcp:443");
    let (code, out) = run(&["check", "--server", "--json", &bad]);
    assert_eq!(code, 2, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["error"]["parameter"], "directory");
}

#[test]
fn types_lists_acme() {
    let (code, out) = run(&["types", "--json"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"acme\""), "{out}");
}

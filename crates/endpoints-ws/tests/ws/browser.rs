//! A real browser: headless Chromium loads a page that opens a WebSocket to our `ws:`
//! server, sends binary data and checks the echo, then reports in a text message.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{listen, port_of, temp_dir, within};
use endpoints_ws::WsInfo;

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><script>
const ws = new WebSocket("ws://127.0.0.1:PORT/browser");
ws.binaryType = "arraybuffer";
const data = new Uint8Array(100000);
for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 255;
const got = [];
let total = 0, binary = true;
ws.onopen = () => ws.send(data);
ws.onmessage = (e) => {
  if (!(e.data instanceof ArrayBuffer)) { binary = false; return; }
  const a = new Uint8Array(e.data);
  got.push(a);
  total += a.length;
  if (total < data.length) return;
  let ok = binary && total === data.length, k = 0;
  for (const c of got) for (const b of c) if (b !== data[k++]) ok = false;
  ws.send(ok ? "echo ok" : "echo bad");
  ws.close(1000);
};
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_echoes_binary_through_our_server() {
    if !endpoints_conformance::peer_program("chromium", "--version", "chromium") {
        return;
    }
    let mut l = listen("ws:path=/browser:tcp:0:interface=127.0.0.1").await;
    let port = port_of(&*l);
    let dir = temp_dir("chromium");
    let page = dir.join("page.html");
    std::fs::write(&page, PAGE.replace("PORT", &port.to_string())).expect("page");
    let _browser = tokio::process::Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium");
    // A browser's start takes seconds on a loaded machine: allow 60 s, over 10x that.
    let mut conn = tokio::time::timeout(std::time::Duration::from_secs(60), l.accept())
        .await
        .expect("Chromium connected within 60 s")
        .expect("accept");
    let info = conn.extensions().get::<WsInfo>().expect("info").clone();
    assert_eq!(info.path, "/browser");
    assert!(
        info.header("user-agent")
            .is_some_and(|u| u.contains("Chrome")),
        "{info:?}"
    );
    let mut data = vec![0u8; 100_000];
    within("the browser's data", conn.read_exact(&mut data))
        .await
        .expect("read");
    let want: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(7) + 3) as u8)
        .collect();
    assert!(data == want, "the browser's bytes differ");
    conn.write_all(&data).await.expect("echo");
    // Its verdict (a text message, read as bytes), then its Close 1000: a clean end.
    let mut verdict = Vec::new();
    within("the verdict", conn.read_to_end(&mut verdict))
        .await
        .expect("a clean end");
    assert_eq!(String::from_utf8_lossy(&verdict), "echo ok");
}

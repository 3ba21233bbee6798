//! The fast tier: a real `tor` with its network disabled and a control port (no network at
//! all). Authentication, ADD_ONION/DEL_ONION through `onion:`, the key file, a lost control
//! connection, a stalled publication, Tor not running.

mod common;

use std::io;
use std::time::Duration;

use common::{TempDir, Tor, tor_available};
use endpoints_core::registry::{build_client, build_server};
use endpoints_tor::control::Control;

use endpoints_tcp as _;
use endpoints_unix as _;

const COOKIE: &str = "CookieAuthentication 1";

async fn control(tor: &Tor, password: Option<&std::path::Path>) -> io::Result<Control> {
    let ep = build_client(
        &format!("tcp:127.0.0.1:{}", tor.control_port)
            .parse()
            .expect("parse"),
    )
    .expect("build");
    Control::connect(ep.as_ref(), password).await
}

fn onion(text: &str) -> Box<dyn endpoints_core::ServerEndpoint> {
    build_server(&text.parse().expect("parse")).expect("build")
}

#[tokio::test]
async fn safecookie_authenticates_and_a_wrong_cookie_is_named() {
    if !tor_available() {
        return;
    }
    let tor = Tor::start("cookie", COOKIE);
    let c = control(&tor, None).await.expect("SAFECOOKIE");
    let r = c.ok("GETINFO version", "GETINFO").await.expect("version");
    assert!(r.value("version").is_some(), "{r:?}");

    // Another 32 bytes in the cookie file: Tor's server hash does not match, we stop before
    // answering (nothing derived from the wrong cookie is sent).
    let good = std::fs::read(tor.cookie()).expect("cookie");
    std::fs::write(tor.cookie(), [7u8; 32]).expect("plant");
    let e = control(&tor, None).await.expect_err("wrong cookie");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("does not know the cookie"), "{e}");
    assert!(
        e.to_string().contains(&tor.cookie().display().to_string()),
        "{e}"
    );
    // A cookie file of the wrong size.
    std::fs::write(tor.cookie(), [7u8; 5]).expect("plant");
    let e = control(&tor, None).await.expect_err("short cookie");
    assert!(e.to_string().contains("is not 32 bytes"), "{e}");
    std::fs::write(tor.cookie(), good).expect("restore");
    control(&tor, None).await.expect("the cookie again");
}

#[tokio::test]
async fn a_password_from_a_file() {
    if !tor_available() {
        return;
    }
    let hashed = std::process::Command::new("tor")
        .args(["--quiet", "--hash-password", "s3cret pass"])
        .output()
        .expect("tor --hash-password");
    let hashed = String::from_utf8_lossy(&hashed.stdout).trim().to_owned();
    assert!(hashed.starts_with("16:"), "{hashed}");
    let tor = Tor::start("password", &format!("HashedControlPassword {hashed}"));
    let e = control(&tor, None).await.expect_err("no password");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("controlPasswordFile="), "{e}");
    let dir = TempDir::new("pw");
    let file = dir.0.join("pw");
    std::fs::write(&file, "s3cret pass\n").expect("write");
    control(&tor, Some(&file)).await.expect("password");
    std::fs::write(&file, "wrong\n").expect("write");
    let e = control(&tor, Some(&file))
        .await
        .expect_err("wrong password");
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("refused the password"), "{e}");
}

#[tokio::test]
async fn add_and_del_onion_with_a_key_file_that_keeps_the_address() {
    if !tor_available() {
        return;
    }
    let tor = Tor::start("onion", COOKIE);
    let dir = TempDir::new("key");
    let key = dir.0.join("onion.key");
    let text = format!(
        "onion:80:controlPort={}:privateKeyFile={}:waitPublished=0",
        tor.control_port,
        key.display()
    );
    // The typed listener (`OnionEndpoint::listen_onion`): also says where Tor forwards to.
    let first = endpoints_tor::OnionEndpoint::from_description(&text.parse().expect("parse"))
        .expect("build")
        .listen_onion()
        .await
        .expect("ADD_ONION");
    let shown = first.to_string();
    assert!(
        shown.starts_with("onion:") && shown.ends_with(".onion:80") && shown.len() == 6 + 56 + 9,
        "{shown}"
    );
    use endpoints_core::Listener;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key)
        .expect("key file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // The listener's address names the onion service.
    let named = first.local_addr().expect("local");
    assert!(matches!(
        named,
        endpoints_core::Address::Name { port: 80, .. }
    ));
    assert_eq!(format!("onion:{named}"), shown);
    // The local listener Tor forwards to is a unix socket in a private directory.
    let local = first.forward_addr().expect("forward");
    let endpoints_core::Address::Unix(path) = &local else {
        panic!("{local:?}")
    };
    let parent = path.parent().expect("dir");
    assert_eq!(
        std::fs::metadata(parent).expect("dir").permissions().mode() & 0o777,
        0o700
    );

    // While it is up, the same key is a collision in Tor.
    let e = onion(&text).listen().await.expect_err("collision");
    assert!(e.to_string().contains("ADD_ONION"), "{e}");

    // close(): DEL_ONION and the local listener released; the same key then works again and
    // gives the same address (a restart keeps it).
    Box::new(first).close().await.expect("close");
    assert!(!parent.exists(), "the private directory is removed");
    let again = onion(&text).listen().await.expect("after close");
    assert_eq!(again.to_string(), shown);
    again.close().await.expect("close");

    // A key file that group or others can read is refused, naming the fix.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = onion(&text).listen().await.expect_err("exposed key");
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[tokio::test]
async fn hidden_service_dir_and_ephemeral_and_tcp_local() {
    if !tor_available() {
        return;
    }
    let tor = Tor::start("hsdir", COOKIE);
    let dir = TempDir::new("hs");
    let hs = dir.0.join("hs");
    let text = format!(
        "onion:443:controlPort={}:hiddenServiceDir={}:waitPublished=0:local=tcp",
        tor.control_port,
        hs.display()
    );
    let l = endpoints_tor::OnionEndpoint::from_description(&text.parse().expect("parse"))
        .expect("build")
        .listen_onion()
        .await
        .expect("ADD_ONION");
    let name = l.to_string();
    let hostname = std::fs::read_to_string(hs.join("hostname")).expect("hostname");
    assert_eq!(format!("onion:{}:443", hostname.trim()), name);
    assert_eq!(
        std::fs::read(hs.join("hs_ed25519_secret_key"))
            .expect("key")
            .len(),
        96
    );
    assert!(matches!(
        l.forward_addr().expect("forward"),
        endpoints_core::Address::Ip(a) if a.ip().is_loopback()
    ));
    endpoints_core::Listener::close(Box::new(l))
        .await
        .expect("close");
    let l = onion(&text).listen().await.expect("again");
    assert_eq!(l.to_string(), name);
    l.close().await.expect("close");

    // Client authorization (v3): Tor takes the key with the service.
    let auth = format!(
        "onion:80:controlPort={}:waitPublished=0:clientAuth=UP3XRKNR6YXU5ULAGHGYGZ5DOOAKEU2ZRDVZ4ZNUGGZRJQ2SUU7Q",
        tor.control_port
    );
    onion(&auth)
        .listen()
        .await
        .expect("ADD_ONION with ClientAuthV3")
        .close()
        .await
        .expect("close");

    // Ephemeral: a new address each time.
    let text = format!("onion:80:controlPort={}:waitPublished=0", tor.control_port);
    let a = onion(&text).listen().await.expect("ephemeral");
    let b = onion(&text).listen().await.expect("ephemeral");
    assert_ne!(a.to_string(), b.to_string());
}

#[tokio::test]
async fn a_lost_control_connection_fails_accept_loudly() {
    if !tor_available() {
        return;
    }
    let mut tor = Tor::start("lost", COOKIE);
    let text = format!("onion:80:controlPort={}:waitPublished=0", tor.control_port);
    let mut l = onion(&text).listen().await.expect("ADD_ONION");
    tor.kill();
    // Bound: the kernel closes tor's sockets at its death; 20 s for a loaded machine.
    let e = tokio::time::timeout(Duration::from_secs(20), l.accept())
        .await
        .expect("accept returns")
        .expect_err("the control connection is gone");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted, "{e}");
    assert!(e.to_string().contains("control connection"), "{e}");
    assert!(e.to_string().contains(".onion:80 is gone"), "{e}");
    // close() after that: the service went with the connection; the local listener is freed.
    l.close().await.expect("close after the loss");
}

#[tokio::test]
async fn a_stalled_publication_names_the_stage() {
    if !tor_available() {
        return;
    }
    let tor = Tor::start("stall", COOKIE);
    // The network is disabled: the descriptor is never uploaded. 2 s is the bound under test.
    let text = format!("onion:80:controlPort={}:timeout=2", tor.control_port);
    let e = onion(&text).listen().await.expect_err("never published");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("publishing the descriptor"), "{e}");
}

#[tokio::test]
async fn tor_not_running() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let e = onion(&format!("onion:80:controlPort={port}"))
        .listen()
        .await
        .expect_err("no tor");
    let text = e.to_string();
    assert!(
        text.contains("reaching and authenticating to the control port"),
        "{text}"
    );
    assert!(text.contains("is Tor running"), "{text}");
    let c = build_client(
        &format!("tor:example.com:80:socksPort={port}")
            .parse()
            .expect("parse"),
    )
    .expect("build");
    let e = c.connect().await.expect_err("no tor");
    assert!(e.to_string().contains("is Tor running"), "{e}");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
}

// `launch=` (txtorcon's `launch`): a `tor` of our own, through `torBinary=` the real tor with
// its network disabled (common::OfflineTor records its process id).

use common::{OfflineTor, alive, cmdline, ended};
use endpoints_tor::launch::{LaunchStage, launch_error};

/// The data directory of the launched tor `pid` (from its `-f DIR/endpoints-torrc`).
fn launched_dir(pid: u32) -> std::path::PathBuf {
    let cmd = cmdline(pid);
    let torrc = cmd
        .split(' ')
        .find(|a| a.ends_with("/endpoints-torrc"))
        .unwrap_or_else(|| panic!("no torrc in `{cmd}`"));
    std::path::Path::new(torrc)
        .parent()
        .expect("dir")
        .to_owned()
}

#[tokio::test]
async fn onion_without_control_port_launches_tor_and_close_stops_it() {
    if !tor_available() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tor = OfflineTor::new("launch-onion");
    // No `controlPort=`: txtorcon's `onion:` launches a Tor, and so does ours.
    let text = format!(
        "onion:80:torBinary={}:waitPublished=0",
        tor.program().display()
    );
    let server = onion(&text);
    assert!(server.to_string().contains("launch=1"), "{server}");
    let l = server.listen().await.expect("launched, ADD_ONION");
    let shown = l.local_addr().expect("addr").to_string();
    assert!(shown.ends_with(".onion:80"), "{shown}");
    let pids = tor.pids();
    assert_eq!(pids.len(), 1, "one tor: {pids:?}");
    let pid = pids[0];
    assert!(alive(pid));
    let dir = launched_dir(pid);
    let meta = std::fs::symlink_metadata(&dir).expect("data dir");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700, "private");

    l.close().await.expect("close");
    // close() waits for tor's exit: it is gone now, not later.
    assert!(!alive(pid), "tor {pid} still runs after close()");
    assert!(!dir.exists(), "the data directory we made is removed");
}

#[tokio::test]
async fn a_dropped_launched_listener_stops_tor() {
    if !tor_available() {
        return;
    }
    let tor = OfflineTor::new("launch-drop");
    let l = onion(&format!(
        "onion:80:launch=1:torBinary={}:waitPublished=0",
        tor.program().display()
    ))
    .listen()
    .await
    .expect("launched");
    let pid = tor.pids()[0];
    assert!(alive(pid));
    drop(l);
    assert!(ended(pid).await, "tor {pid} still runs after the drop");
}

#[tokio::test]
async fn a_stalled_bootstrap_names_the_stage_and_tor_is_stopped() {
    if !tor_available() {
        return;
    }
    endpoints_test_support::capture::install();
    // The network is disabled: the bootstrap never ends. 3 s is the bound under test.
    let tor = OfflineTor::new("launch-stall");
    let e = onion(&format!(
        "onion:80:torBinary={}:timeout=3",
        tor.program().display()
    ))
    .listen()
    .await
    .expect_err("never bootstraps");
    println!("{e}");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    let le = launch_error(&e).unwrap_or_else(|| panic!("a LaunchError: {e}"));
    assert!(
        matches!(le.stage, LaunchStage::Bootstrap { .. }),
        "{:?}",
        le.stage
    );
    let text = e.to_string();
    assert!(text.contains("launching tor, bootstrapping (at "), "{text}");
    assert!(text.contains("is the network reachable"), "{text}");
    let pid = tor.pids()[0];
    assert!(
        ended(pid).await,
        "tor {pid} still runs after the failed listen"
    );
    // The progress went to the log, with the process id.
    let progress = endpoints_test_support::capture::lines_with(&[
        "tor bootstrapping",
        &format!("pid={pid}"),
        "progress=",
    ]);
    assert!(!progress.is_empty(), "bootstrap progress in the log");

    // The client: the same, through connect().
    let e = build_client(
        &format!(
            "tor:example.com:80:launch=1:torBinary={}:timeout=3",
            tor.program().display()
        )
        .parse()
        .expect("parse"),
    )
    .expect("build")
    .connect()
    .await
    .expect_err("never bootstraps");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(
        matches!(
            launch_error(&e).map(|l| &l.stage),
            Some(LaunchStage::Bootstrap { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("cannot connect to `tor:"), "{e}");
    let pids = tor.pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(ended(pids[1]).await, "tor {} still runs", pids[1]);
}

#[tokio::test]
async fn a_missing_tor_binary_says_what_to_install() {
    let dir = TempDir::new("no-tor");
    let missing = dir.0.join("tor");
    let e = build_client(
        &format!(
            "tor:example.com:80:launch=1:torBinary={}",
            missing.display()
        )
        .parse()
        .expect("parse"),
    )
    .expect("build")
    .connect()
    .await
    .expect_err("no tor");
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert_eq!(
        launch_error(&e).map(|l| &l.stage),
        Some(&LaunchStage::Start),
        "{e}"
    );
    let text = e.to_string();
    println!("{text}");
    assert!(text.contains("apt install tor"), "{text}");
    assert!(text.contains(&missing.display().to_string()), "{text}");
    let e = onion(&format!("onion:80:torBinary={}", missing.display()))
        .listen()
        .await
        .expect_err("no tor");
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("apt install tor"), "{e}");
}

#[tokio::test]
async fn a_planted_symlink_for_the_data_directory_is_refused() {
    if !tor_available() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tor = OfflineTor::new("launch-link");
    let dir = TempDir::new("datadir");
    let target = dir.0.join("elsewhere");
    std::fs::create_dir(&target).expect("target");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let link = dir.0.join("data");
    std::os::unix::fs::symlink(&target, &link).expect("plant");
    let text = |d: &std::path::Path| {
        format!(
            "onion:80:torBinary={}:waitPublished=0:dataDirectory={}",
            tor.program().display(),
            d.display()
        )
    };
    let e = onion(&text(&link)).listen().await.expect_err("a symlink");
    assert_eq!(
        launch_error(&e).map(|l| &l.stage),
        Some(&LaunchStage::DataDirectory),
        "{e}"
    );
    assert!(e.to_string().contains("is a symbolic link: refused"), "{e}");
    assert_eq!(
        std::fs::read_dir(&target).expect("target").count(),
        0,
        "nothing written through the link"
    );
    assert!(tor.pids().is_empty(), "no tor started");
    // The same through the client.
    let e = build_client(
        &format!(
            "tor:example.com:80:launch=1:torBinary={}:dataDirectory={}",
            tor.program().display(),
            link.display()
        )
        .parse()
        .expect("parse"),
    )
    .expect("build")
    .connect()
    .await
    .expect_err("a symlink");
    assert!(e.to_string().contains("is a symbolic link: refused"), "{e}");

    // A directory others can reach: refused, naming the fix.
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let e = onion(&text(&target)).listen().await.expect_err("mode 755");
    assert!(e.to_string().contains("`chmod 700` it"), "{e}");

    // A new one: created mode 700, used, kept after close().
    let fresh = dir.0.join("fresh");
    let l = onion(&text(&fresh)).listen().await.expect("launched");
    assert_eq!(
        std::fs::metadata(&fresh)
            .expect("made")
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    l.close().await.expect("close");
    assert!(
        fresh.join("notice.log").exists(),
        "kept, with tor's state and log"
    );
    let pids = tor.pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    assert!(!alive(pids[0]));
}

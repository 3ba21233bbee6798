//! RSA keys (user key file, agent, host key) and OpenSSH's known_hosts markers
//! (`@cert-authority` with host certificates, `@revoked`) against a real sshd.

use endpoints_core::registry::build_client;
use endpoints_core::{ClientEndpoint, Description};
use endpoints_hostname as _;
use endpoints_ssh as _;
use endpoints_tcp as _;
use endpoints_test_support::sshd::{self, HostCertificate, Options, Sshd};
use tokio::io::AsyncReadExt;

fn client(text: &str) -> Box<dyn ClientEndpoint> {
    build_client(&Description::parse(text).expect("parses")).expect("builds")
}

/// A client of `s` as root with `user_key`, trusting `known_hosts`, no agent, running
/// `echo hi`.
fn described(s: &Sshd, known_hosts: &str) -> String {
    format!(
        "ssh:127.0.0.1:{}:username=root:keys={}:knownHosts={known_hosts}:agent=no:command=echo\\ hi",
        s.port,
        s.path("user_key"),
    )
}

/// `echo hi` through `text`: its output, or the refusal in words.
async fn echo_hi(text: &str) -> Result<Vec<u8>, String> {
    let mut conn = client(text).connect().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    conn.read_to_end(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// A public key file's `TYPE BASE64`.
fn key_of(path: &str) -> String {
    let text = std::fs::read_to_string(path).expect("public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Write `lines` as a known_hosts file in `s`'s directory; its path.
fn known_hosts(s: &Sshd, name: &str, lines: &[String]) -> String {
    let path = s.dir().join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("known_hosts");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_user_key_file_authenticates() {
    if !sshd::available() {
        return;
    }
    // OpenSSH 8.8+ takes RSA only as rsa-sha2-256/512 (no `ssh-rsa`, SHA-1): a login here
    // is a SHA-2 signature.
    let s = Sshd::start_with(
        "rsauser",
        &Options {
            user_key: Some("rsa"),
            ..Options::default()
        },
    );
    let out = echo_hi(&described(&s, &s.path("known_hosts"))).await;
    assert_eq!(out.expect("the RSA key is accepted"), b"hi\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_key_is_never_signed_with_sha1() {
    if !sshd::available() {
        return;
    }
    // A server that takes RSA only as `ssh-rsa` (SHA-1) would let a SHA-1 signature in:
    // this client's is refused. (OpenSSH 9.2's server-sig-algs still lists rsa-sha2-*, so
    // the client signs with SHA-512, which this sshd does not take.)
    let s = Sshd::start_with(
        "rsasha1",
        &Options {
            user_key: Some("rsa"),
            config: Some("PubkeyAcceptedAlgorithms ssh-rsa\n"),
            ..Options::default()
        },
    );
    let e = echo_hi(&described(&s, &s.path("known_hosts")))
        .await
        .expect_err("no SHA-1 signature");
    assert!(e.contains("the SSH server refused `root`"), "{e}");
    assert!(
        e.contains("user_key` (SHA256:"),
        "the key was read and offered: {e}"
    );
    assert!(e.contains(", refused)"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sshd_with_only_an_rsa_host_key_is_checked_against_known_hosts() {
    if !sshd::available() {
        return;
    }
    let s = Sshd::start_with(
        "rsahost",
        &Options {
            host_key: Some("rsa"),
            ..Options::default()
        },
    );
    let out = echo_hi(&described(&s, &s.path("known_hosts"))).await;
    assert_eq!(out.expect("the recorded RSA host key is accepted"), b"hi\n");
    // Another RSA key recorded for it: changed.
    let e = echo_hi(&described(&s, &s.path("changed_known_hosts")))
        .await
        .expect_err("a changed RSA key is refused");
    assert!(e.contains("HAS CHANGED"), "{e}");
    assert!(e.contains("line 2"), "{e}");
    // Nothing recorded: unknown, with the command that adds an RSA key.
    let e = echo_hi(&described(&s, &s.path("empty_known_hosts")))
        .await
        .expect_err("an unknown RSA key is refused");
    assert!(e.contains("is not known"), "{e}");
    assert!(e.contains("-t ssh-rsa"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_key_in_the_agent_authenticates() {
    if !sshd::available()
        || !endpoints_test_support::peers::startable("ssh-agent", "-h", "openssh-client")
    {
        return;
    }
    let s = Sshd::start_with(
        "rsaagent",
        &Options {
            user_key: Some("rsa"),
            ..Options::default()
        },
    );
    let said = super::client::agent_says_hi(&s).await;
    assert_eq!(said.expect("the agent's RSA key is accepted"), b"hi\n");
}

fn with_certificate(tag: &str, principals: &str, validity: &str) -> Sshd {
    Sshd::start_with(
        tag,
        &Options {
            certificate: Some(HostCertificate {
                principals: principals.to_owned(),
                validity: validity.to_owned(),
            }),
            ..Options::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_certificate_from_a_trusted_authority_is_accepted() {
    if !sshd::available() {
        return;
    }
    let s = with_certificate("certok", "127.0.0.1,localhost", "-5m:+1h");
    // Only the authority is known (no line for the host's own key), by a pattern.
    let file = known_hosts(
        &s,
        "ca_known_hosts",
        &[
            "# our hosts' authority".to_owned(),
            format!(
                "@cert-authority [127.0.0.*]:* {}",
                key_of(&s.path("ca.pub"))
            ),
        ],
    );
    let out = echo_hi(&described(&s, &file)).await;
    assert_eq!(out.expect("the certificate is accepted"), b"hi\n");
    // Another authority, and the host's own key recorded: as OpenSSH, the certificate's
    // key is then checked as a plain key, and it is known.
    let file = known_hosts(
        &s,
        "key_known_hosts",
        &[
            format!("@cert-authority * {}", key_of(&s.path("other_ca.pub"))),
            format!("[127.0.0.1]:{} {}", s.port, key_of(&s.path("host_key.pub"))),
        ],
    );
    let out = echo_hi(&described(&s, &file)).await;
    assert_eq!(out.expect("the recorded key is accepted"), b"hi\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_certificate_from_another_authority_is_refused() {
    if !sshd::available() {
        return;
    }
    let s = with_certificate("certwrongca", "127.0.0.1", "-5m:+1h");
    let file = known_hosts(
        &s,
        "other_ca_known_hosts",
        &[format!(
            "@cert-authority [127.0.0.1]:{} {}",
            s.port,
            key_of(&s.path("other_ca.pub"))
        )],
    );
    let e = echo_hi(&described(&s, &file))
        .await
        .expect_err("an unknown authority is refused");
    assert!(e.contains("is not trusted"), "{e}");
    assert!(e.contains("no `@cert-authority` line"), "{e}");
    assert!(e.contains("ssh-keygen -lf CA.pub"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_host_certificate_is_refused() {
    if !sshd::available() {
        return;
    }
    let s = with_certificate("certexpired", "127.0.0.1", "20200101:20200102");
    let file = known_hosts(
        &s,
        "ca_known_hosts",
        &[format!(
            "@cert-authority [127.0.0.1]:{} {}",
            s.port,
            key_of(&s.path("ca.pub"))
        )],
    );
    let e = echo_hi(&described(&s, &file))
        .await
        .expect_err("an expired certificate is refused");
    assert!(e.contains("expired at 2020-01-02"), "{e}");
    assert!(e.contains("line 1 trusts"), "{e}");
    assert!(e.contains("ssh-keygen -s CA_KEY -h -n 127.0.0.1"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_certificate_for_another_name_is_refused() {
    if !sshd::available() {
        return;
    }
    let s = with_certificate("certname", "db.example,localhost", "-5m:+1h");
    let file = known_hosts(
        &s,
        "ca_known_hosts",
        &[format!("@cert-authority * {}", key_of(&s.path("ca.pub")))],
    );
    let e = echo_hi(&described(&s, &file))
        .await
        .expect_err("a certificate for other names is refused");
    assert!(
        e.contains("is for `db.example`, `localhost`, not for `127.0.0.1`"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_host_key_or_authority_is_refused() {
    if !sshd::available() {
        return;
    }
    let s = with_certificate("revoked", "127.0.0.1", "-5m:+1h");
    let host = format!("[127.0.0.1]:{}", s.port);
    // The host's key is recorded, and revoked: revoked wins.
    let file = known_hosts(
        &s,
        "revoked_key",
        &[
            format!("{host} {}", key_of(&s.path("host_key.pub"))),
            format!("@revoked * {}", key_of(&s.path("host_key.pub"))),
        ],
    );
    let e = echo_hi(&described(&s, &file))
        .await
        .expect_err("a revoked key is refused");
    assert!(e.contains("line 2 marks `@revoked`"), "{e}");
    // The authority is trusted, and revoked.
    let file = known_hosts(
        &s,
        "revoked_ca",
        &[
            format!("@cert-authority {host} {}", key_of(&s.path("ca.pub"))),
            format!("@revoked * {}", key_of(&s.path("ca.pub"))),
        ],
    );
    let e = echo_hi(&described(&s, &file))
        .await
        .expect_err("a revoked authority is refused");
    assert!(e.contains("signed by the authority"), "{e}");
    assert!(e.contains("line 2 marks `@revoked`"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_certificate_is_still_checked_by_its_key() {
    if !sshd::available() {
        return;
    }
    // Certificates are asked for (a `@cert-authority` line names the host) but this sshd has
    // none: it shows its plain key, checked as always.
    let s = Sshd::start("nocert");
    let host = format!("[127.0.0.1]:{}", s.port);
    let ca = s.dir().join("some_ca");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&ca)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let ca_line = format!(
        "@cert-authority * {}",
        key_of(&format!("{}.pub", ca.display()))
    );
    let file = known_hosts(
        &s,
        "both",
        &[
            ca_line.clone(),
            format!("{host} {}", key_of(&s.path("host_key.pub"))),
        ],
    );
    let out = echo_hi(&described(&s, &file)).await;
    assert_eq!(out.expect("the recorded key is accepted"), b"hi\n");
    let file = known_hosts(&s, "ca_only", &[ca_line]);
    let e = echo_hi(&described(&s, &file))
        .await
        .expect_err("an unknown key is refused");
    assert!(e.contains("is not known"), "{e}");
}

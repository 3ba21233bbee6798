//! The server's key checked as OpenSSH does: a pinned fingerprint, or a known_hosts file
//! (hashed entries and `[host]:port` included). Never off: an unknown key and a changed key
//! are refused, each in its own words with what to do.

use std::path::PathBuf;

use russh::keys::{HashAlg, PublicKey};

/// What vouches for the server's key.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Only the key with this SHA-256 fingerprint (`SHA256:...`).
    Fingerprint(String),
    /// The keys a known_hosts file records for the host.
    KnownHosts(PathBuf),
}

/// Check `key`, offered by `host`:`port`. `Err` is the refusal in words.
pub fn check(trust: &Trust, host: &str, port: u16, key: &PublicKey) -> Result<(), String> {
    let seen = key.fingerprint(HashAlg::Sha256).to_string();
    let algorithm = key.algorithm();
    let name = known_hosts_name(host, port);
    match trust {
        Trust::Fingerprint(pinned) => {
            if *pinned == seen {
                Ok(())
            } else {
                Err(format!(
                    "the SSH server {name} offered the {algorithm} key {seen}, not the pinned {pinned} (`fingerprint=`): refused; if the server's key was changed on purpose, pin the new one"
                ))
            }
        }
        Trust::KnownHosts(file) => {
            let known =
                russh::keys::known_hosts::known_host_keys_path(host, port, file).map_err(|e| {
                    format!("cannot read the known hosts file `{}`: {e}", file.display())
                })?;
            if known.iter().any(|(_, k)| k == key) {
                return Ok(());
            }
            if let Some((counted, old)) = known.iter().find(|(_, k)| k.algorithm() == algorithm) {
                let line = line_of(file, old).unwrap_or(*counted);
                return Err(format!(
                    "WARNING: THE HOST KEY OF {name} HAS CHANGED: it offered the {algorithm} key {seen}, but `{}` line {line} records {}; someone may be intercepting the connection: refused. If the change is expected, remove that line (`ssh-keygen -R '{name}' -f {}`) and add the new key",
                    file.display(),
                    old.fingerprint(HashAlg::Sha256),
                    file.display()
                ));
            }
            let port_arg = if port == 22 {
                String::new()
            } else {
                format!("-p {port} ")
            };
            Err(format!(
                "the SSH server {name} is not known: its {algorithm} key is {seen} and `{}` has no key of this type for it: refused. If that fingerprint is the server's (check it there with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`), add it: `ssh-keyscan {port_arg}-t {algorithm} {host} >> {}`, or pin it: `fingerprint={seen}`",
                file.display(),
                file.display()
            ))
        }
    }
}

/// The line (from 1) of `file` that records `key`: russh's count skips comment lines.
fn line_of(file: &std::path::Path, key: &PublicKey) -> Option<usize> {
    let openssh = key.to_openssh().ok()?;
    let b64 = openssh.split_whitespace().nth(1)?;
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .position(|l| !l.starts_with('#') && l.split_whitespace().any(|w| w == b64))
        .map(|i| i + 1)
}

/// The host as known_hosts writes it: `host`, or `[host]:port` off port 22.
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

//! A throw-away PKI for the tests, made with rcgen: a CA, server and client leaves, an
//! expired leaf, and an unrelated CA.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType, date_time_ymd,
};

#[derive(Debug)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// Files in `dir`:
    /// `ca.pem`; `server.pem` (localhost, 127.0.0.1, ::1: cert + key), `server-cert.pem`,
    /// `server-key.pem`; `expired.pem`; `client.pem` (cert + key); `other-ca.pem`;
    /// `other-server.pem` (localhost, signed by the other CA); `sni/a.pem` (a.test),
    /// `sni/wild.pem` (*.wild.test); `self-ca.pem` (self-signed, CA:TRUE, localhost; with its
    /// key: `self-ca-server.pem`), `self-leaf.pem` (self-signed, not a CA, localhost; with its
    /// key: `self-leaf-server.pem`).
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("endpoints-pki-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sni")).expect("dir");
        let (ca_pem, ca_key, issuer) = make_ca("endpoints test CA");
        let (other_ca_pem, _, other_ca) = make_ca("unrelated CA");
        write(&dir, "ca.pem", &ca_pem);
        write(&dir, "ca-key.pem", &ca_key);
        write(&dir, "other-ca.pem", &other_ca_pem);

        let names = vec!["localhost".to_owned()];
        let ips = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ];
        let (cert, key) = leaf(&issuer, names.clone(), &ips, false);
        write(&dir, "server-cert.pem", &cert);
        write(&dir, "server-key.pem", &key);
        write(&dir, "server.pem", &format!("{cert}{key}"));
        let (cert, key) = leaf(&issuer, names.clone(), &ips, true);
        write(&dir, "expired.pem", &format!("{cert}{key}"));
        let (cert, key) = leaf(&other_ca, names, &ips, false);
        write(&dir, "other-server.pem", &format!("{cert}{key}"));
        let (cert, key) = leaf(&issuer, vec!["client.test".into()], &[], false);
        write(&dir, "client.pem", &format!("{cert}{key}"));
        let (cert, key) = leaf(&issuer, vec!["a.test".into()], &[], false);
        write(&dir, "sni/a.pem", &format!("{cert}{key}"));
        let (cert, key) = leaf(&issuer, vec!["*.wild.test".into()], &[], false);
        write(&dir, "sni/wild.pem", &format!("{cert}{key}"));
        let (cert, key) = self_signed(true);
        write(&dir, "self-ca.pem", &cert);
        write(&dir, "self-ca-server.pem", &format!("{cert}{key}"));
        let (cert, key) = self_signed(false);
        write(&dir, "self-leaf.pem", &cert);
        write(&dir, "self-leaf-server.pem", &format!("{cert}{key}"));
        Self { dir }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// Add another SNI certificate (for reload tests).
    pub fn add_sni(&self, file: &str, name: &str) {
        let issuer = reload_ca(&self.dir);
        let (cert, key) = leaf(&issuer, vec![name.into()], &[], false);
        write(&self.dir, &format!("sni/{file}"), &format!("{cert}{key}"));
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).expect("write");
}

fn make_ca(cn: &str) -> (String, String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.self_signed(&key).expect("self-signed");
    let key_pem = key.serialize_pem();
    (cert.pem(), key_pem, Issuer::new(params, key))
}

/// The test CA again, from its saved key (for certificates added after setup).
fn reload_ca(dir: &Path) -> Issuer<'static, KeyPair> {
    let key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca-key.pem")).expect("ca key"))
        .expect("parse");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "endpoints test CA");
    Issuer::new(params, key)
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: Vec<String>,
    ips: &[IpAddr],
    expired: bool,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(names).expect("params");
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    if expired {
        params.not_before = date_time_ymd(2001, 1, 1);
        params.not_after = date_time_ymd(2002, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// A self-signed certificate for `localhost` (and 127.0.0.1), marked CA:TRUE or not.
fn self_signed(ca: bool) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

//! A certbot-style tree, written as certbot writes it: `archive/<lineage>/cert1.pem`,
//! `chain1.pem`, `fullchain1.pem`, `privkey1.pem` (the key mode 0600), and
//! `live/<lineage>/{cert,chain,fullchain,privkey}.pem` as relative symlinks
//! (`../../archive/<lineage>/cert1.pem`), retargeted on renewal. Certificates come from a
//! root CA through an intermediate (as Let's Encrypt's); the root is only in `ca/root.pem`,
//! for clients, so a server must send the intermediate for a client to verify it.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};

pub struct Certbot {
    /// `/etc/letsencrypt`.
    pub root: PathBuf,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Certbot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certbot").field("root", &self.root).finish()
    }
}

impl Certbot {
    pub fn new(tag: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("endpoints-certbot-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["archive", "live", "ca"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(
            root.join("live/README"),
            "This directory contains your keys and certificates.\n",
        )
        .expect("README");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Test Root X1");
        let ca_cert = ca_params.self_signed(&ca_key).expect("root");
        std::fs::write(root.join("ca/root.pem"), ca_cert.pem()).expect("root.pem");
        let ca = Issuer::new(ca_params, ca_key);
        let int_key = KeyPair::generate().expect("key");
        let mut int_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        int_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        int_params.distinguished_name.push(DnType::CommonName, "R3");
        let int_cert = int_params.signed_by(&int_key, &ca).expect("intermediate");
        Self {
            root,
            intermediate_pem: int_cert.pem(),
            intermediate: Issuer::new(int_params, int_key),
        }
    }

    pub fn live(&self) -> PathBuf {
        self.root.join("live")
    }

    /// The root CA's certificate, alone in a directory (a client's `trustRoots`).
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }

    pub fn ca_file(&self) -> PathBuf {
        self.root.join("ca/root.pem")
    }

    /// Issue (or renew: `version` 2, 3...) `lineage` for `names` with `serial`, then point
    /// `live/<lineage>/` at it. Returns the leaf certificate's PEM.
    pub fn issue(&self, lineage: &str, names: &[&str], version: u32, serial: u64) -> String {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        let cert = params.signed_by(&key, &self.intermediate).expect("leaf");
        let archive = self.root.join("archive").join(lineage);
        let live = self.live().join(lineage);
        std::fs::create_dir_all(&archive).expect("archive");
        std::fs::create_dir_all(&live).expect("live");
        let leaf = cert.pem();
        let files = [
            ("cert", leaf.clone()),
            ("chain", self.intermediate_pem.clone()),
            ("fullchain", format!("{leaf}{}", self.intermediate_pem)),
            ("privkey", key.serialize_pem()),
        ];
        for (kind, text) in &files {
            let file = archive.join(format!("{kind}{version}.pem"));
            write_private(&file, text, *kind == "privkey");
        }
        for (kind, _) in &files {
            relink(
                &live.join(format!("{kind}.pem")),
                &Path::new("../../archive")
                    .join(lineage)
                    .join(format!("{kind}{version}.pem")),
            );
        }
        leaf
    }
}

fn write_private(file: &Path, text: &str, private: bool) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(file)
        .expect("open");
    f.write_all(text.as_bytes()).expect("write");
}

/// Point the symlink `link` at `target` in one step (a new link renamed over the old).
pub fn relink(link: &Path, target: &Path) {
    let tmp = link.with_extension("pem.new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).expect("symlink");
    std::fs::rename(&tmp, link).expect("rename");
}

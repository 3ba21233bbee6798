//! The certificates a server holds, and which one answers a client: by SNI name (exact,
//! then `*.` in place of the first label, as Twisted), or the first one when the client
//! sends no name.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

/// One loaded set of server certificates.
#[derive(Default)]
pub(crate) struct Loaded {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    /// The answer when the client sends no name (and, with `any_name`, for every name).
    pub(crate) first: Option<Arc<CertifiedKey>>,
    /// The names served, in the order they were found.
    pub(crate) names: Vec<String>,
    /// `ssl:`: one certificate for every client, whatever name it asks for.
    any_name: bool,
}

impl Loaded {
    /// The `ssl:` set: `ck` for everyone.
    pub(crate) fn single(ck: Arc<CertifiedKey>) -> Self {
        Self {
            first: Some(ck),
            any_name: true,
            ..Self::default()
        }
    }

    /// Serve `name` (lower case) with `ck`, replacing what served it before.
    pub(crate) fn insert(&mut self, name: String, ck: Arc<CertifiedKey>) {
        if self.by_name.insert(name.clone(), ck).is_none() {
            self.names.push(name);
        }
    }

    /// The certificate for a client that asked for `name` (or for none).
    pub(crate) fn lookup(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = name.filter(|_| !self.any_name) else {
            return self.first.clone();
        };
        let name = name.to_ascii_lowercase();
        if let Some(c) = self.by_name.get(&name) {
            return Some(c.clone());
        }
        let (_, rest) = name.split_once('.')?;
        self.by_name.get(&format!("*.{rest}")).cloned()
    }
}

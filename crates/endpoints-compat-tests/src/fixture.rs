//! Test fixtures the vectors refer to: the `crfake:` plugin of Twisted's test suite, and
//! file placeholders such as `{PEM}`.

use std::fmt;
use std::io;

use endpoints::{ClientEndpoint, Connection, Description, ParseError};
use serde_json::Value;

/// Twisted's test plugin `crfake`: a client type that records the arguments it was given.
/// It exercises dispatch to a third-party plugin; it has no transport.
#[derive(Debug)]
struct Recorder(Description);

impl fmt::Display for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[endpoints::async_trait]
impl ClientEndpoint for Recorder {
    async fn connect(&self) -> io::Result<Connection> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "`crfake:` only records its arguments (a conformance fixture)",
        ))
    }
}

fn build_recorder(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    Ok(Box::new(Recorder(d.clone())))
}

endpoints::register_client! {
    prefix: "crfake",
    summary: "conformance fixture: records its arguments, never connects",
    params: &[],
    build: build_recorder,
}

/// Replace the `{NAME}` placeholders of a vector by files generated once per run (escaped
/// for use in a description, as Twisted's `quoteStringArgument` would).
pub(crate) fn substitute(input: &str, v: &Value) -> Result<String, String> {
    let _ = v; // some vectors list their placeholders under "fixtures", some do not
    if !input.contains('{') {
        return Ok(input.to_owned());
    }
    let files = files()?;
    let mut out = input.to_owned();
    for (name, path) in files {
        out = out.replace(
            &format!("{{{name}}}"),
            &endpoints::escape(&path.display().to_string()),
        );
    }
    if out.contains('{') {
        return Err(format!("unknown placeholder in `{input}`"));
    }
    Ok(out)
}

/// Put the placeholders back into text that names fixture files (our canonical form), so
/// that what we build can be compared and declared without this run's temporary paths.
pub(crate) fn unsubstitute(text: &str) -> String {
    let Ok(files) = files() else {
        return text.to_owned();
    };
    let mut by_length: Vec<(&str, String)> = files
        .iter()
        .map(|(name, path)| (*name, endpoints::escape(&path.display().to_string())))
        .collect();
    // Longest first: a directory's path is a prefix of the files in it.
    by_length.sort_by_key(|(_, p)| std::cmp::Reverse(p.len()));
    let mut out = text.to_owned();
    for (name, path) in by_length {
        out = out.replace(&path, &format!("{{{name}}}"));
    }
    out
}

/// The fixture files, by placeholder name.
fn files() -> Result<&'static [(&'static str, std::path::PathBuf)], String> {
    static FILES: std::sync::OnceLock<Result<Vec<(&'static str, std::path::PathBuf)>, String>> =
        std::sync::OnceLock::new();
    FILES
        .get_or_init(|| make_files().map_err(|e| format!("cannot make TLS fixtures: {e}")))
        .as_deref()
        .map_err(Clone::clone)
}

fn make_files() -> Result<Vec<(&'static str, std::path::PathBuf)>, Box<dyn std::error::Error>> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let dir = std::env::temp_dir().join(format!("endpoints-compat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["certdir", "cas", "casparent"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    let pem = format!("{cert_pem}{key_pem}");
    let ca = |cn: &str| -> Result<String, Box<dyn std::error::Error>> {
        let k = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        Ok(p.self_signed(&k)?.pem())
    };
    let files: Vec<(&'static str, std::path::PathBuf, String)> = vec![
        ("PEM", dir.join("server.pem"), pem.clone()),
        ("CERTDIR", dir.join("certdir/server.pem"), pem.clone()),
        (
            "CHAIN",
            dir.join("chain.pem"),
            format!("{}{}", ca("thing1")?, ca("thing2")?),
        ),
        ("EMPTY", dir.join("empty.pem"), String::new()),
        (
            "NOTRAIL_KEY",
            dir.join("notrail-key.pem"),
            key_pem.trim_end().to_owned(),
        ),
        (
            "NOTRAIL_CERT",
            dir.join("notrail-cert.pem"),
            cert_pem.trim_end().to_owned(),
        ),
        ("CAS", dir.join("cas/ca.pem"), ca("a CA")?),
        ("CASPARENT", dir.join("casparent/server.pem"), pem),
    ];
    let mut out = Vec::new();
    for (name, path, text) in files {
        std::fs::write(&path, text)?;
        // Directory placeholders name the directory, file placeholders the file.
        let named = match name {
            "CERTDIR" | "CAS" | "CASPARENT" => path
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or(path),
            _ => path,
        };
        out.push((name, named));
    }
    Ok(out)
}

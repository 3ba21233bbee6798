//! The background task: load from the cache, order, renew, retry with backoff.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use endpoints_core::async_trait;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::cache::{Cache, Issued};

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The longest wait between two attempts after failures.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// How long an order may take to be validated, and its certificate to be issued (each of
/// the two polls).
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// The bound of one request to the ACME server, connection and answer included (certbot
/// waits 45 s, lego 30 s). instant-acme's client has no timeout of its own.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The bound of a whole attempt (account, order, validations, certificate): the two polls
/// and the requests around them fit well inside it.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(600);

/// `step` bounded by `limit`: past it, a failure that says the ACME server did not answer.
async fn bounded<T>(
    limit: Duration,
    at: &str,
    doing: &str,
    step: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, step).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {} s from the ACME server at {at} to {doing} (is it overloaded, or is `directory=` not an ACME server?)",
            limit.as_secs()
        )),
    }
}

/// Where a listener's certificate stands, from [`AcmeServerEndpoint::status`](crate::AcmeServerEndpoint::status).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcmeStatus {
    /// The certificate being served: its `notBefore` and `notAfter`, and whether it came
    /// from the cache (`true`) or from an order of this listener.
    pub certificate: Option<CertificateStatus>,
    /// Certificates obtained by orders since the listener opened.
    pub orders: u32,
    /// Attempts that failed since the listener opened.
    pub failures: u32,
    /// The last failure, in words (cleared by a success).
    pub last_error: Option<String>,
}

/// The served certificate, in an [`AcmeStatus`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateStatus {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// When it will be renewed: two thirds into its lifetime, less a random part of up to a
    /// twentieth of it (so that servers started together do not renew together).
    pub renew_at: SystemTime,
    /// Loaded from `cache=` rather than ordered by this listener.
    pub from_cache: bool,
}

/// What the TLS side reads: the current certificate, the pending challenges.
#[derive(Debug, Default)]
pub(crate) struct Certs {
    pub(crate) current: RwLock<Option<Arc<CertifiedKey>>>,
    /// Challenge configurations by lower-case domain name.
    pub(crate) challenges: Mutex<HashMap<String, Arc<ServerConfig>>>,
    /// How many challenges are pending: the accept loops go on accepting while it is above
    /// 0, even when the application does not (see `server::accept_loop`).
    pub(crate) pending: watch::Sender<usize>,
}

impl Certs {
    pub(crate) fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    pub(crate) fn challenge(&self, name: &str) -> Option<Arc<ServerConfig>> {
        self.challenges
            .lock()
            .ok()
            .and_then(|m| m.get(&name.to_ascii_lowercase()).cloned())
    }

    fn set_current(&self, ck: Arc<CertifiedKey>) {
        if let Ok(mut g) = self.current.write() {
            *g = Some(ck);
        }
    }

    pub(crate) fn set_challenge(&self, name: &str, cfg: Option<Arc<ServerConfig>>) {
        if let Ok(mut m) = self.challenges.lock() {
            match cfg {
                Some(c) => m.insert(name.to_ascii_lowercase(), c),
                None => m.remove(&name.to_ascii_lowercase()),
            };
            self.pending.send_replace(m.len());
        }
    }
}

/// Everything the task needs, fixed when the description is built.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) domains: Vec<String>,
    pub(crate) cache: PathBuf,
    pub(crate) contact: Vec<String>,
    pub(crate) directory: String,
    /// A PEM file with the ACME server's CA (`trustRoots=`).
    pub(crate) trust_roots: Option<PathBuf>,
    /// The first wait after a failed attempt (doubled after each, up to [`MAX_BACKOFF`]).
    pub(crate) retry: Duration,
}

/// One per (cache directory, ACME directory URL, names) in the process: the certificate,
/// its challenges and status, and the renewal task while any listener of it is open. Two
/// listeners of the same names (dual stack, two systemd sockets, the same description
/// listened on twice) share one, so they make one order and answer each other's
/// validations; the first description's `contact=`, `trustRoots=` and `retry=` are used.
#[derive(Debug)]
pub(crate) struct Manager {
    key: ManagerKey,
    pub(crate) settings: Arc<Settings>,
    pub(crate) certs: Arc<Certs>,
    pub(crate) status: watch::Sender<AcmeStatus>,
    /// Listeners open, and the task while there are any.
    running: Mutex<Running>,
    /// Held while a listener opens (the cache read, the task started): one at a time.
    opening: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Running {
    listeners: usize,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What makes two managers one: the cache directory (absolute), the directory URL, the
/// names as the cache keys them.
type ManagerKey = (PathBuf, String, Vec<String>);

/// The process's managers, by key; weak, so a manager goes with its last endpoint and
/// listener.
static MANAGERS: Mutex<Vec<(ManagerKey, std::sync::Weak<Manager>)>> = Mutex::new(Vec::new());

impl Manager {
    /// The manager of `settings`' names in the process: the live one, or a new one.
    pub(crate) fn shared(settings: Settings) -> Arc<Manager> {
        let cache = std::path::absolute(&settings.cache).unwrap_or_else(|_| settings.cache.clone());
        let key: ManagerKey = (
            cache,
            settings.directory.clone(),
            crate::cache::cache_names(&settings.domains),
        );
        let mut all = MANAGERS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(_, m)| m.strong_count() > 0);
        if let Some(m) = all
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, m)| m.upgrade())
        {
            return m;
        }
        let m = Arc::new(Manager {
            key: key.clone(),
            settings: Arc::new(settings),
            certs: Arc::default(),
            status: watch::Sender::new(AcmeStatus::default()),
            running: Mutex::default(),
            opening: tokio::sync::Mutex::new(()),
        });
        all.push((key, Arc::downgrade(&m)));
        m
    }

    /// A listener opens: the first one (of several at once) loads the cached certificate,
    /// so the first handshake can use it, and starts the renewal task. The lease stops the
    /// task when the last listener goes.
    pub(crate) async fn open(self: &Arc<Self>) -> Lease {
        let _one_at_a_time = self.opening.lock().await;
        let running = self
            .running
            .lock()
            .map(|r| r.task.is_some())
            .unwrap_or_else(|e| e.into_inner().task.is_some());
        if !running {
            let current = load_cached(&self.settings, &self.certs, &self.status).await;
            self.status.send_modify(|s| {
                s.orders = 0;
                s.failures = 0;
                s.last_error = None;
            });
            let task = tokio::spawn(run(
                self.settings.clone(),
                self.certs.clone(),
                self.status.clone(),
                current,
            ));
            self.lock_running().task = Some(task);
        } else {
            tracing::debug!(
                domains = %self.settings.domains.join(","),
                cache = %self.key.0.display(),
                "acme: another listener of these names is open: sharing its certificate and renewals"
            );
        }
        self.lock_running().listeners += 1;
        Lease(self.clone())
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(t) = self.lock_running().task.take() {
            t.abort();
        }
    }
}

/// A listener's hold on its [`Manager`]'s renewal task: the last one dropped stops it.
#[derive(Debug)]
pub(crate) struct Lease(Arc<Manager>);

impl Drop for Lease {
    fn drop(&mut self) {
        let mut r = self.0.lock_running();
        r.listeners = r.listeners.saturating_sub(1);
        if r.listeners == 0
            && let Some(t) = r.task.take()
        {
            t.abort();
        }
    }
}

/// Run the file operation `f` (blocking: reads, writes, `fsync`) on tokio's blocking pool,
/// off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("a cache file operation did not finish: {e}"))
}

/// Load the cached certificate into `certs`.
pub(crate) async fn load_cached(
    settings: &Settings,
    certs: &Certs,
    status: &watch::Sender<AcmeStatus>,
) -> Option<Issued> {
    let cache = Cache::new(&settings.cache, &settings.directory);
    let (reading, domains) = (cache.clone(), settings.domains.clone());
    match blocking(move || reading.load_cert(&domains))
        .await
        .and_then(|r| r)
    {
        Ok(Some(issued)) => {
            certs.set_current(issued.key.clone());
            tracing::info!(
                domains = %settings.domains.join(","),
                dir = %cache.dir().display(),
                "acme: serving the cached certificate"
            );
            status.send_modify(|s| s.certificate = Some(cert_status(&issued, true)));
            Some(issued)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("acme: the cached certificate cannot be used ({e}); ordering a new one");
            None
        }
    }
}

fn cert_status(i: &Issued, from_cache: bool) -> CertificateStatus {
    CertificateStatus {
        not_before: i.not_before,
        not_after: i.not_after,
        renew_at: i.renew_at(),
        from_cache,
    }
}

/// Where the renewal loop gets certificates and the time: the ACME server and the system
/// clock ([`Acme`]), or a test's fakes.
#[async_trait]
pub(crate) trait Source: Send {
    /// The wall clock (certificates' dates are compared with it).
    fn now(&self) -> SystemTime;
    /// One attempt to obtain a certificate.
    async fn obtain(&mut self) -> Result<Issued, String>;
}

/// The real [`Source`]: orders from the ACME server, [`SystemTime::now`].
struct Acme {
    settings: Arc<Settings>,
    certs: Arc<Certs>,
    account: Option<Account>,
}

#[async_trait]
impl Source for Acme {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn obtain(&mut self) -> Result<Issued, String> {
        obtain_bounded(&self.settings, &self.certs, &mut self.account).await
    }
}

/// The task: order when there is no certificate or it is due, forever. Ends when dropped
/// (aborted with the listener).
pub(crate) async fn run(
    settings: Arc<Settings>,
    certs: Arc<Certs>,
    status: watch::Sender<AcmeStatus>,
    current: Option<Issued>,
) {
    let mut acme = Acme {
        settings: settings.clone(),
        certs: certs.clone(),
        account: None,
    };
    renew(&settings, &certs, &status, current, &mut acme).await;
}

/// The loop of [`run`], with its [`Source`].
pub(crate) async fn renew(
    settings: &Settings,
    certs: &Certs,
    status: &watch::Sender<AcmeStatus>,
    mut current: Option<Issued>,
    source: &mut dyn Source,
) {
    let mut backoff = settings.retry;
    // The wait after a certificate that was due on arrival: doubled each time in a row.
    let mut due_backoff = settings.retry;
    loop {
        if let Some(c) = &current {
            let now = source.now();
            if c.not_before > now {
                // The clock is behind the CA's: the certificate is served (clients with
                // the right time take it), and renewed at its time, never re-ordered now.
                tracing::warn!(
                    domains = %settings.domains.join(","),
                    "acme: the certificate's notBefore is {} s ahead of this machine's clock (is the clock right?); serving it",
                    c.not_before.duration_since(now).unwrap_or_default().as_secs()
                );
            }
            let wait = if c.is_due(now) {
                Duration::ZERO
            } else {
                c.renew_at().duration_since(now).unwrap_or(Duration::ZERO)
            };
            if !wait.is_zero() {
                // Sleep in steps of at most a day: a suspended machine's clock jumps.
                tokio::time::sleep(wait.min(Duration::from_secs(86_400))).await;
                continue;
            }
            tracing::info!(domains = %settings.domains.join(","), "acme: renewing the certificate");
        }
        match source.obtain().await {
            Ok(issued) => {
                certs.set_current(issued.key.clone());
                tracing::info!(
                    domains = %settings.domains.join(","),
                    "acme: new certificate installed, valid until {}",
                    fmt_time(issued.not_after)
                );
                status.send_modify(|s| {
                    s.certificate = Some(cert_status(&issued, false));
                    s.orders += 1;
                    s.last_error = None;
                });
                let now = source.now();
                let due_already = issued.is_due(now);
                let age = now.duration_since(issued.not_before).unwrap_or_default();
                current = Some(issued);
                backoff = settings.retry;
                if due_already {
                    // Due on arrival: this machine's clock is ahead of the CA's (or the CA
                    // issues very short lives). Another order now would be just as due: wait,
                    // doubling the wait each time in a row, up to MAX_BACKOFF.
                    let wait = due_backoff;
                    due_backoff = (due_backoff * 2).min(MAX_BACKOFF);
                    tracing::warn!(
                        domains = %settings.domains.join(","),
                        "acme: the new certificate is already due for renewal: it started {} s ago by this machine's clock (is the clock ahead?); it is served, next order in {}s",
                        age.as_secs(),
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                } else {
                    due_backoff = settings.retry;
                }
            }
            Err(e) => {
                let serving = if current.is_some() {
                    "the last certificate goes on serving"
                } else {
                    "no certificate yet: TLS handshakes fail until one is obtained"
                };
                tracing::warn!(
                    domains = %settings.domains.join(","),
                    "acme: {e}; {serving}; retrying in {}s",
                    backoff.as_secs_f64()
                );
                status.send_modify(|s| {
                    s.failures += 1;
                    s.last_error = Some(e.clone());
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// `SystemTime` as seconds since 1970 (no date library here).
fn fmt_time(t: SystemTime) -> String {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => format!("{} (Unix time)", d.as_secs()),
        Err(_) => "before 1970".to_owned(),
    }
}

/// An error and its causes, in one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn builder(settings: &Settings) -> Result<instant_acme::AccountBuilder, String> {
    match &settings.trust_roots {
        Some(p) => Account::builder_with_root(p).map_err(|e| {
            format!(
                "cannot use `trustRoots={}` for the ACME server: {}",
                p.display(),
                chain(&e)
            )
        }),
        None => Account::builder().map_err(|e| format!("cannot set up HTTPS: {}", chain(&e))),
    }
}

async fn account(settings: &Settings, cache: &Cache) -> Result<Account, String> {
    let at = &settings.directory;
    let reading = cache.clone();
    if let Some(json) = blocking(move || reading.load_account()).await?? {
        let creds: AccountCredentials = serde_json::from_slice(&json).map_err(|e| {
            format!(
                "`{}/account.json` is not an account file ({e}); move it away to create a new account",
                cache.dir().display()
            )
        })?;
        let loading = builder(settings)?.from_credentials(creds);
        return bounded(REQUEST_TIMEOUT * 2, at, "load the account", async {
            loading
                .await
                .map_err(|e| directory_error(at, "load the account", &e))
        })
        .await;
    }
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let new_account = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let creating = builder(settings)?.create(&new_account, at.clone(), None);
    // Two requests: the directory, then the new account (its nonce request included).
    let (account, creds) = bounded(REQUEST_TIMEOUT * 3, at, "create an account", async {
        creating
            .await
            .map_err(|e| directory_error(at, "create an account", &e))
    })
    .await?;
    let json =
        serde_json::to_vec(&creds).map_err(|e| format!("cannot serialize the account: {e}"))?;
    let writing = cache.clone();
    blocking(move || writing.store_account(&json))
        .await?
        .map_err(|e| format!("cannot save the account key: {e}"))?;
    tracing::info!(directory = %at, "acme: created an account");
    Ok(account)
}

/// A failure at the start of a conversation with the ACME server, in words that say what
/// to check.
fn directory_error(at: &str, doing: &str, e: &instant_acme::Error) -> String {
    match e {
        instant_acme::Error::Hyper(_) | instant_acme::Error::Other(_) => format!(
            "cannot reach the ACME server at {at} to {doing}: {} (is the server up and the URL right? check `directory=`; a private CA's HTTPS certificate needs `trustRoots=`)",
            chain(e)
        ),
        instant_acme::Error::Json(_) => format!(
            "{at} did not answer with an ACME directory ({}): check `directory=` (Let's Encrypt's is {})",
            chain(e),
            crate::LETS_ENCRYPT
        ),
        _ => format!("the ACME server at {at} refused to {doing}: {}", chain(e)),
    }
}

/// The self-signed certificate that answers TLS-ALPN-01 for `name` (RFC 8737).
pub(crate) fn challenge_config(name: &str, digest: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
        .map_err(|e| format!("cannot make a challenge certificate for `{name}`: {e}"))?;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot make a challenge certificate for `{name}`: {e}"))?;
    // Not `with_single_cert`: webpki refuses the critical acmeIdentifier extension, which
    // only the CA's validator has to understand.
    let signing = crate::provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .map_err(|e| format!("challenge key: {e}"))?;
    let ck = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing));
    let mut cfg = ServerConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Always(ck)));
    cfg.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves one certificate.
#[derive(Debug)]
struct Always(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Always {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The challenges being answered, withdrawn when dropped: when the attempt ends, however it
/// ends (a failure, or its deadline cancelling it).
struct Answering<'a> {
    certs: &'a Certs,
    names: Vec<String>,
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            self.certs.set_challenge(name, None);
        }
    }
}

/// One attempt, bounded by [`ATTEMPT_TIMEOUT`] (each request by [`REQUEST_TIMEOUT`]).
async fn obtain_bounded(
    settings: &Settings,
    certs: &Certs,
    account_slot: &mut Option<Account>,
) -> Result<Issued, String> {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, obtain(settings, certs, account_slot)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the order for {} did not complete within {} s (the ACME server at {} is slow to answer or to validate); given up",
            settings.domains.join(", "),
            ATTEMPT_TIMEOUT.as_secs(),
            settings.directory
        )),
    }
}

/// One order, start to finish.
async fn obtain(
    settings: &Settings,
    certs: &Certs,
    account_slot: &mut Option<Account>,
) -> Result<Issued, String> {
    let cache = Cache::new(&settings.cache, &settings.directory);
    let creating = cache.clone();
    blocking(move || creating.create())
        .await?
        .map_err(|e| format!("cannot use `cache=`: {e}"))?;
    let account = match account_slot {
        Some(a) => a.clone(),
        None => {
            let a = account(settings, &cache).await?;
            *account_slot = Some(a.clone());
            a
        }
    };
    let ids: Vec<Identifier> = settings
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let at = settings.directory.as_str();
    let new_order = NewOrder::new(&ids);
    let mut order = bounded(REQUEST_TIMEOUT * 2, at, "place an order", async {
        account
            .new_order(&new_order)
            .await
            .map_err(|e| format!("the ACME server refused the order: {}", chain(&e)))
    })
    .await?;
    let mut answering = Answering {
        certs,
        names: Vec::new(),
    };
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(a) = bounded(REQUEST_TIMEOUT, at, "read an authorization", async {
            Ok(authorizations.next().await)
        })
        .await?
        {
            let mut a = a.map_err(|e| format!("cannot read an authorization: {}", chain(&e)))?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(format!(
                        "the authorization for `{}` is {other:?}",
                        a.identifier()
                    ));
                }
            }
            let name = a.identifier().to_string();
            let mut challenge = a.challenge(ChallengeType::TlsAlpn01).ok_or_else(|| {
                format!("the ACME server offers no tls-alpn-01 challenge for `{name}`")
            })?;
            let digest = challenge.key_authorization().digest();
            certs.set_challenge(&name, Some(challenge_config(&name, digest.as_ref())?));
            answering.names.push(name.clone());
            bounded(REQUEST_TIMEOUT, at, "start a challenge", async {
                challenge.set_ready().await.map_err(|e| {
                    format!("cannot start the challenge for `{name}`: {}", chain(&e))
                })
            })
            .await?;
        }
        let retry = RetryPolicy::new().timeout(ORDER_TIMEOUT);
        // The poll's own bound, and one request past it.
        let state = bounded(ORDER_TIMEOUT + REQUEST_TIMEOUT, at, "validate the order", async {
            order
                .poll_ready(&retry)
                .await
                .map_err(|e| format!("the order did not become ready: {}", chain(&e)))
        })
        .await?;
        if state != OrderStatus::Ready {
            return Err(format!(
                "validation failed for {} (the ACME server must reach this listener on port 443 of each name, offering ALPN `acme-tls/1`): order is {state:?}",
                settings.domains.join(", ")
            ));
        }
        Ok(())
    }
    .await;
    drop(answering);
    result?;
    let key_pem = bounded(REQUEST_TIMEOUT, at, "finalize the order", async {
        order
            .finalize()
            .await
            .map_err(|e| format!("cannot finalize the order: {}", chain(&e)))
    })
    .await?;
    let retry = RetryPolicy::new().timeout(ORDER_TIMEOUT);
    let chain_pem = bounded(
        ORDER_TIMEOUT + REQUEST_TIMEOUT,
        at,
        "issue the certificate",
        async {
            order
                .poll_certificate(&retry)
                .await
                .map_err(|e| format!("the certificate was not issued: {}", chain(&e)))
        },
    )
    .await?;
    let bundle = format!("{key_pem}{chain_pem}");
    let issued = Issued::from_pem(bundle.as_bytes())
        .map_err(|e| format!("the issued certificate is unusable: {e}"))?;
    let domains = settings.domains.clone();
    let stored = blocking(move || {
        cache
            .store_cert(&domains, &bundle)
            .map_err(|e| e.to_string())
    });
    if let Err(e) = stored.await.and_then(|r| r) {
        tracing::warn!(
            "acme: {e}; the certificate is served but will be ordered again at the next start"
        );
    }
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    /// A CA whose certificates are dated by its own clock, `skew` behind this machine's (a
    /// negative skew: ahead of it). The machine's clock is tokio's paused one.
    struct SkewedCa {
        base: SystemTime,
        start: tokio::time::Instant,
        /// How far this machine's clock is ahead of the CA's.
        ahead: Duration,
        behind: Duration,
        life: Duration,
        key: Arc<CertifiedKey>,
        orders: Arc<std::sync::atomic::AtomicU32>,
    }

    impl SkewedCa {
        fn new(ahead: Duration, behind: Duration) -> Self {
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(vec!["test.example".to_owned()])
                .expect("params")
                .self_signed(&key)
                .expect("cert");
            let pem = format!("{}{}", key.serialize_pem(), cert.pem());
            Self {
                base: SystemTime::now(),
                start: tokio::time::Instant::now(),
                ahead,
                behind,
                life: 90 * DAY,
                key: Issued::from_pem(pem.as_bytes()).expect("issued").key,
                orders: Arc::default(),
            }
        }
    }

    #[async_trait]
    impl Source for SkewedCa {
        fn now(&self) -> SystemTime {
            self.base + self.start.elapsed()
        }

        async fn obtain(&mut self) -> Result<Issued, String> {
            self.orders
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ca_now = self.now() - self.ahead + self.behind;
            Ok(Issued::new(self.key.clone(), ca_now, ca_now + self.life))
        }
    }

    fn settings() -> Settings {
        Settings {
            domains: vec!["test.example".to_owned()],
            cache: PathBuf::from("/nonexistent"),
            contact: Vec::new(),
            directory: "https://ca.example/dir".to_owned(),
            trust_roots: None,
            retry: Duration::from_secs(60),
        }
    }

    /// Orders made in a day of (paused, virtual) time against `ca`.
    async fn orders_in_a_day(mut ca: SkewedCa) -> (u32, AcmeStatus) {
        let orders = ca.orders.clone();
        let status = watch::Sender::new(AcmeStatus::default());
        let (settings, certs) = (settings(), Certs::default());
        let watched = status.clone();
        tokio::select! {
            _ = renew(&settings, &certs, &status, None, &mut ca) => unreachable!("the loop never ends"),
            _ = tokio::time::sleep(DAY) => {}
        }
        let s = watched.borrow().clone();
        (orders.load(std::sync::atomic::Ordering::Relaxed), s)
    }

    /// Issue 24 item 4: this machine's clock 61 days ahead of the CA's, so each new 90-day
    /// certificate arrives past its renewal time (day 60). Ordering again every `retry=`
    /// (60 s) would be 1,440 orders a day; the waits double from 60 s up to 6 hours.
    #[tokio::test(start_paused = true)]
    async fn a_certificate_due_on_arrival_is_reordered_with_backoff() {
        let (orders, s) = orders_in_a_day(SkewedCa::new(61 * DAY, Duration::ZERO)).await;
        // Waits 60 s, 120 s, ... 15,360 s (8.5 hours in all), then 6 hours each: 12 orders.
        assert!((2..=13).contains(&orders), "{orders} orders in a day");
        assert_eq!(s.orders, orders);
        assert!(s.certificate.is_some(), "each certificate is served");
    }

    /// A certificate whose notBefore is ahead of this machine's clock (the clock behind the
    /// CA's) is served, and not re-ordered: its renewal time is two months away.
    #[tokio::test(start_paused = true)]
    async fn a_certificate_from_the_future_is_used_not_reordered() {
        let (orders, s) = orders_in_a_day(SkewedCa::new(Duration::ZERO, 2 * DAY)).await;
        assert_eq!(orders, 1);
        let c = s.certificate.expect("served");
        assert!(c.not_before > SystemTime::now());
    }
}

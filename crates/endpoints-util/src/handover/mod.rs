//! Hand listening sockets to the next process (issue 25): the keys, the inherited sockets, the
//! live listeners, the successor and its readiness.
//!
//! # How it fits together
//!
//! * A transport's `listen()` calls [`claim`] with its canonical description. When the process
//!   was started by a handover (or by systemd with descriptors named by [`key`]), it gets the
//!   inherited socket for that description and adopts it instead of binding; otherwise it
//!   binds. Either way it [`register`]s the listening socket, so a later handover passes it on.
//! * [`hand_over`] starts the successor (by default this binary with the same arguments) with
//!   every registered listener and a readiness pipe, through the systemd protocol
//!   (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), and waits for [`signal_ready`] from it, at
//!   most [`DEFAULT_READY_TIMEOUT`]. A successor that cannot start, exits, or is not ready in
//!   time is killed and reaped, and the error says why: this process goes on serving.
//! * Once the successor is ready the caller stops accepting, drains and exits; listeners then
//!   leave their socket files and lock files in place ([`handed_over`]). A successor owns the
//!   files of the unix sockets it adopted only from its readiness on
//!   ([`owns_inherited_files`]): one that fails before leaves them to the previous process.
//! * Inherited descriptors that nothing adopted (a description that changed) are closed with
//!   a warning once the process listens ([`close_unclaimed`], also done by [`signal_ready`]),
//!   whether they came from a handover or from systemd's descriptor store.
//! * `fd:` and `systemd:` descriptions, which name a passed descriptor, look for a handed-over
//!   socket under their own key first ([`inherited_for`]).
//!
//! The descriptors arrive through `endpoints_systemd::init()` (which must run first in `main`,
//! before threads): it moves every descriptor whose name starts with [`KEY_PREFIX`] here
//! ([`offer`]).
//!
//! # Keys
//!
//! A descriptor's name (`FDNAME`) is `ep.` + the canonical description, `%`-encoded so that
//! it has no `:` and only printable ASCII (`tcp:port=0:interface=127.0.0.1` is
//! `ep.tcp%3Aport=0%3Ainterface=127.0.0.1`), then `#N`: the listener's position among this
//! process's listeners with the same description (0 for the first). Two listeners on one
//! description (two `tcp:0`) are `#0` and `#1`, and a successor started with the same
//! arguments listens in the same order, so each gets its own socket back; a port 0 listener
//! gets the socket its predecessor was given, on the same port. A name longer than systemd's
//! 255 bytes uses a 64-bit FNV-1a hash of the description instead (`ep.h0123456789abcdef#N`).

mod spawn;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Every handover name starts with this.
pub const KEY_PREFIX: &str = "ep.";
/// The name of the readiness pipe among the passed descriptors.
pub const READY_NAME: &str = "ep.ready";
/// What a ready successor writes on the pipe.
const READY_MESSAGE: &[u8] = b"READY=1\n";
/// Why a handover failed when the pipe closed before readiness.
const PIPE_CLOSED: &str = "closed the readiness pipe without signalling";
/// How long [`hand_over`] waits for the successor by default (tableflip's 60 s).
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// systemd's limit on a descriptor name (`FDNAME_MAX`).
const FDNAME_MAX: usize = 255;
/// Room kept for `#N` and an extra suffix (`+lock`).
const SUFFIX_ROOM: usize = 16;

/// The name base for a canonical description: `ep.` + the `%`-encoded text, or a hash when
/// that would be longer than systemd allows.
pub fn key(canonical: &str) -> String {
    let mut out = String::from(KEY_PREFIX);
    for b in canonical.bytes() {
        if b.is_ascii_alphanumeric() || b"._=,@/+-[]".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() + SUFFIX_ROOM > FDNAME_MAX {
        return format!("{KEY_PREFIX}h{:016x}", fnv1a(canonical.as_bytes()));
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether `name` is one of ours (a listener's, a lock's, or the readiness pipe).
pub fn is_handover_name(name: &str) -> bool {
    name.starts_with(KEY_PREFIX)
}

#[derive(Default)]
struct State {
    /// Inherited descriptors not adopted yet, by name.
    inherited: HashMap<String, OwnedFd>,
    /// Per key base: how many listeners claimed a name with it.
    counts: HashMap<String, u32>,
    /// Live listeners, by registration id: their names and a duplicate of each descriptor.
    live: Vec<(u64, Vec<(String, OwnedFd)>)>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static HANDED_OVER: AtomicBool = AtomicBool::new(false);
static IN_PROGRESS: AtomicBool = AtomicBool::new(false);
/// A readiness pipe was inherited: this process was started by a handover.
static STARTED_BY_HANDOVER: AtomicBool = AtomicBool::new(false);
/// This process told its predecessor it is ready (or found it gone).
static READY_SIGNALLED: AtomicBool = AtomicBool::new(false);
/// The listeners were given to the service manager's descriptor store.
static STORED: AtomicBool = AtomicBool::new(false);

fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut g = state();
    f(g.get_or_insert_with(State::default))
}

/// Give an inherited descriptor named `name` to this module (`endpoints_systemd::init()` does
/// this for every name that starts with [`KEY_PREFIX`]). A second descriptor with the same
/// name replaces (and closes) the first.
pub fn offer(name: String, fd: OwnedFd) {
    if name == READY_NAME {
        STARTED_BY_HANDOVER.store(true, Ordering::SeqCst);
    }
    with_state(|s| s.inherited.insert(name, fd));
}

/// What [`claim`] gives a listener.
#[derive(Debug)]
pub struct Claim {
    /// The listener's name: register it under this name.
    pub name: String,
    /// The inherited socket for it, if the process was handed one.
    pub inherited: Option<OwnedFd>,
}

/// The name of the next listener on `canonical`, and the inherited socket for it if there is
/// one. Call it once per `listen()`, bound or adopted.
pub fn claim(canonical: &dyn fmt::Display) -> Claim {
    let base = key(&canonical.to_string());
    with_state(|s| {
        let n = s.counts.entry(base.clone()).or_insert(0);
        let name = format!("{base}#{n}");
        *n += 1;
        let inherited = s.inherited.remove(&name);
        Claim { name, inherited }
    })
}

/// The number of the inherited socket the next [`claim`] on `canonical` would get, without
/// taking it (or, if that one is gone, of any other inherited socket for `canonical`). A
/// description that names a passed descriptor (`fd:name=web`, `systemd:UNIX:index=2`) is
/// resolved against this first: in a successor the descriptors are named by key, not by the
/// names and positions the first process was given.
pub fn inherited_for(canonical: &dyn fmt::Display) -> Option<RawFd> {
    use std::os::fd::AsRawFd as _;
    let base = key(&canonical.to_string());
    with_state(|s| {
        let next = s.counts.get(&base).copied().unwrap_or(0);
        if let Some(fd) = s.inherited.get(&format!("{base}#{next}")) {
            return Some(fd.as_raw_fd());
        }
        let prefix = format!("{base}#");
        s.inherited
            .iter()
            .filter(|(name, _)| {
                name.strip_prefix(&prefix)
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(_, fd)| fd.as_raw_fd())
            .min()
    })
}

/// An extra inherited descriptor that goes with a claimed listener (`{name}+{what}`, e.g. a
/// unix socket's lock file: `+lock`).
pub fn take_extra(name: &str, what: &str) -> Option<OwnedFd> {
    with_state(|s| s.inherited.remove(&format!("{name}+{what}")))
}

/// Names of the inherited descriptors nothing has adopted yet.
pub fn unclaimed() -> Vec<String> {
    let mut v: Vec<String> = with_state(|s| {
        s.inherited
            .keys()
            .filter(|k| k.as_str() != READY_NAME)
            .cloned()
            .collect()
    });
    v.sort();
    v
}

/// A registered listener: while it lives, a handover passes its descriptors on. Dropping it
/// unregisters them.
#[derive(Debug)]
pub struct Registration {
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut g = state();
        if let Some(s) = g.as_mut() {
            s.live.retain(|(id, _)| *id != self.id);
        }
    }
}

/// Register the listening socket `fd` named `name` (from [`claim`]), with extra descriptors
/// that go with it (`(what, fd)`, passed as `{name}+{what}`). Duplicates are kept (close on
/// exec), so the listener itself is unchanged.
pub fn register(
    name: &str,
    fd: BorrowedFd<'_>,
    extra: &[(&str, BorrowedFd<'_>)],
) -> io::Result<Registration> {
    let mut fds = vec![(name.to_owned(), fd.try_clone_to_owned()?)];
    for (what, fd) in extra {
        fds.push((format!("{name}+{what}"), fd.try_clone_to_owned()?));
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    with_state(|s| s.live.push((id, fds)));
    Ok(Registration { id })
}

/// Duplicates of every registered listener's descriptors, with their names.
pub fn listeners() -> io::Result<Vec<(String, OwnedFd)>> {
    with_state(|s| {
        let mut out = Vec::new();
        for (_, fds) in &s.live {
            for (name, fd) in fds {
                out.push((name.clone(), fd.try_clone()?));
            }
        }
        Ok(out)
    })
}

/// Whether this process has handed its listeners to a ready successor: listeners closing now
/// leave their socket files and lock files in place, since the successor serves them.
pub fn handed_over() -> bool {
    HANDED_OVER.load(Ordering::SeqCst)
}

/// Whether the files that go with inherited listeners (a unix socket's path and its lock
/// file) are this process's to remove when it stops. Not while it was started by a handover
/// and has not signalled readiness ([`signal_ready`]): the previous process still serves
/// them, and a successor that fails (is stopped, exits, cannot listen) leaves them to it.
/// From readiness on they are this process's (as they are when it was not started by a
/// handover, e.g. after a restart from systemd's descriptor store).
pub fn owns_inherited_files() -> bool {
    !STARTED_BY_HANDOVER.load(Ordering::SeqCst) || READY_SIGNALLED.load(Ordering::SeqCst)
}

/// Record that every listener was given to the service manager's descriptor store
/// (`FDSTORE=1`): a restart passes them back, so from now on listeners closing leave their
/// socket files and lock files in place ([`stored`]), as after a handover.
pub fn mark_stored() {
    STORED.store(true, Ordering::SeqCst);
}

/// Whether [`mark_stored`] was called: the service manager keeps copies of the listeners for
/// the next start, which adopts them with their files; removing a unix socket's file or lock
/// now would leave it a socket nobody can reach. (A socket file left after a final stop is
/// stale, and the next listener on its path takes it over: it refuses connections.)
pub fn stored() -> bool {
    STORED.load(Ordering::SeqCst)
}

/// Whether this process was started by a handover (it holds a readiness pipe it has not
/// written to yet).
pub fn started_by_handover() -> bool {
    with_state(|s| s.inherited.contains_key(READY_NAME))
}

/// Close every inherited descriptor that nothing adopted, each with a warning naming it, and
/// return their names. They are listeners (and their lock files) that a previous process
/// handed over, or that systemd's descriptor store passed back after a restart, under
/// descriptions this process does not have (another port, another path): left open, such a
/// socket would keep completing handshakes that nobody ever serves. Call it once every
/// listener listens ([`signal_ready`] does); with a descriptor store, tell it to drop the
/// names returned (`FDSTOREREMOVE=1`, `FDNAME=`), or it passes them again.
pub fn close_unclaimed() -> Vec<String> {
    let mut unadopted: Vec<(String, OwnedFd)> = with_state(|s| {
        let names: Vec<String> = s
            .inherited
            .keys()
            .filter(|k| k.as_str() != READY_NAME)
            .cloned()
            .collect();
        names
            .into_iter()
            .filter_map(|k| s.inherited.remove_entry(&k))
            .collect()
    });
    unadopted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names = Vec::with_capacity(unadopted.len());
    for (name, fd) in unadopted {
        tracing::warn!(
            descriptor = %name,
            "an inherited descriptor (handed over, or from the descriptor store) matched no \
             description of this process; it is closed now (connections waiting in its queue \
             are refused): start the new version with the same descriptions to keep it"
        );
        drop(fd);
        names.push(name);
    }
    names
}

/// Tell the process that started this one that it is ready (every listener is listening): it
/// then stops accepting and drains. Inherited descriptors that nothing adopted are closed now,
/// with a warning each ([`close_unclaimed`]), whether or not this process was started by a
/// handover. Returns `Ok(false)` when this process was not started by a handover.
pub fn signal_ready() -> io::Result<bool> {
    close_unclaimed();
    let pipe = with_state(|s| s.inherited.remove(READY_NAME));
    let Some(pipe) = pipe else {
        return Ok(false);
    };
    use std::io::Write as _;
    let mut f = std::fs::File::from(pipe);
    let written = f.write_all(READY_MESSAGE);
    if written
        .as_ref()
        .map_or_else(|e| e.kind() == io::ErrorKind::BrokenPipe, |()| true)
    {
        // Ready, or the previous process is gone: the listeners' files are ours now.
        READY_SIGNALLED.store(true, Ordering::SeqCst);
    }
    written.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot tell the previous process this one is ready (the readiness pipe): {e}"),
        )
    })?;
    Ok(true)
}

/// What to start and how long to wait for it.
#[derive(Clone, Debug)]
pub struct HandoverOptions {
    /// The program (a path, or a name looked up in `PATH`).
    pub program: PathBuf,
    /// Its arguments (without the program name).
    pub args: Vec<OsString>,
    /// How long the successor has to signal readiness.
    pub ready_timeout: Duration,
}

impl HandoverOptions {
    /// This binary, as on disk now (an upgraded one if it was replaced), with this process's
    /// arguments, and the default timeout.
    pub fn same_binary() -> io::Result<Self> {
        Ok(Self {
            program: current_binary()?,
            args: std::env::args_os().skip(1).collect(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
        })
    }
}

/// The path of the running binary; on Linux, the path it was started from even when the file
/// was replaced since (`/proc/self/exe` then ends in ` (deleted)`).
fn current_binary() -> io::Result<PathBuf> {
    let p = std::env::current_exe().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot find this program's own binary to start its successor: {e}"),
        )
    })?;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    match p.as_os_str().as_bytes().strip_suffix(b" (deleted)") {
        Some(stripped) => Ok(PathBuf::from(OsString::from_vec(stripped.to_vec()))),
        None => Ok(p),
    }
}

/// A successor that signalled readiness.
#[derive(Debug)]
pub struct Ready {
    /// Its process id.
    pub pid: u32,
    /// The child, to leave running (dropping it does not kill it).
    pub child: tokio::process::Child,
}

/// Why a handover did not happen. This process is unchanged: it still serves.
#[derive(Debug)]
pub struct HandoverError(String);

impl fmt::Display for HandoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandoverError {}

/// Start the successor with every registered listener and wait until it is ready. On success
/// [`handed_over`] is true from then on: stop accepting, drain and exit. On failure the
/// successor was killed and reaped, and this process may try again later. A second call while
/// one runs fails at once.
pub async fn hand_over(options: &HandoverOptions) -> Result<Ready, HandoverError> {
    if IN_PROGRESS.swap(true, Ordering::SeqCst) {
        return Err(HandoverError(
            "a handover is already in progress; this one is refused".into(),
        ));
    }
    if handed_over() {
        return Err(HandoverError(
            "the listeners were already handed over; this process is stopping".into(),
        ));
    }
    let result = run(options).await;
    match &result {
        Ok(_) => HANDED_OVER.store(true, Ordering::SeqCst),
        Err(_) => IN_PROGRESS.store(false, Ordering::SeqCst),
    }
    result
}

async fn run(options: &HandoverOptions) -> Result<Ready, HandoverError> {
    let program = options.program.display().to_string();
    let fail = |what: &str, e: &dyn fmt::Display| {
        HandoverError(format!("{what}: {e}; this process keeps serving"))
    };
    let mut fds = listeners().map_err(|e| fail("cannot duplicate the listening sockets", &e))?;
    if fds.is_empty() {
        return Err(HandoverError(
            "there are no listeners to hand over (a stdio: listener cannot be); this process \
             keeps serving"
                .into(),
        ));
    }
    let (reader, writer) =
        std::io::pipe().map_err(|e| fail("cannot make the readiness pipe", &e))?;
    fds.push((READY_NAME.to_owned(), OwnedFd::from(writer)));
    let mut child = spawn::spawn(&options.program, &options.args, fds)
        .map_err(|e| fail(&format!("cannot start the successor {program}"), &e))?;
    let pid = child.id().unwrap_or(0);
    // The write end now lives in the child only: its exit is an end of file here.
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))
        .map_err(|e| fail("cannot watch the readiness pipe", &e))?;
    let mut got = Vec::new();
    let wait = async {
        let mut buf = [0u8; 64];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return Err(PIPE_CLOSED.to_owned()),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.len() > READY_MESSAGE.len() * 4 {
                        return Err("wrote something other than READY=1 on the pipe".into());
                    }
                    if got.ends_with(b"\n") {
                        return if got == READY_MESSAGE {
                            Ok(())
                        } else {
                            Err(format!(
                                "wrote {:?} on the readiness pipe, not READY=1",
                                String::from_utf8_lossy(&got)
                            ))
                        };
                    }
                }
                Err(e) => return Err(format!("readiness pipe: {e}")),
            }
        }
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout(options.ready_timeout, wait) => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(why),
            Err(_) => Err(format!(
                "was not ready within {:?} (the ready timeout)",
                options.ready_timeout
            )),
        },
        status = child.wait() => Err(match status {
            Ok(s) => format!("exited ({s}) before it was ready"),
            Err(e) => format!("cannot be waited for: {e}"),
        }),
    };
    let outcome = match outcome {
        Err(why) if why == PIPE_CLOSED => {
            // Most often the successor exited: say so, with its status, when it did.
            match tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
                Ok(Ok(s)) => Err(format!("exited ({s}) before it was ready")),
                _ => Err(why),
            }
        }
        other => other,
    };
    match outcome {
        Ok(()) => Ok(Ready { pid, child }),
        Err(why) => {
            let _ = child.start_kill();
            // Reaped here: no zombie is left, whatever the successor did.
            let status = child.wait().await;
            let status = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("not known: {e}"),
            };
            Err(HandoverError(format!(
                "the successor {program} (pid {pid}) {why}; it was stopped ({status}); \
                 this process keeps serving"
            )))
        }
    }
}

/// Write `pid` to `path` atomically: a new temporary file next to it, created with
/// `O_CREAT|O_EXCL|O_NOFOLLOW` (a file or symbolic link planted at its name is never opened,
/// followed or truncated: another name is tried), written, `fsync`ed, then renamed over
/// `path`, so a reader sees the old content or the new, never a partial one. The rename
/// replaces a symbolic link at `path` itself, never its target.
pub fn write_pid_file(path: &Path, pid: u32) -> io::Result<()> {
    use std::io::Write as _;
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot write the pid file {}: {e}", path.display()),
        )
    };
    let (tmp, mut file) = create_temporary(path).map_err(named)?;
    let written = file
        .write_all(format!("{pid}\n").as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(named(e));
    }
    // The rename itself: durable once the directory is synced (best effort: some file
    // systems refuse to sync a directory).
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// How many temporary names [`write_pid_file`] tries before giving up.
const TEMPORARY_TRIES: u32 = 16;

/// A new file next to `path`: `PATH.tmpPID`, or when that name is taken (by a leftover or a
/// planted link), `PATH.tmpPID.` and 16 unpredictable hex digits.
fn create_temporary(path: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    use std::hash::{BuildHasher as _, Hasher as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    // Seeded at random per process by std.
    let seed = std::collections::hash_map::RandomState::new();
    for attempt in 0..TEMPORARY_TRIES {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        if attempt > 0 {
            let mut h = seed.build_hasher();
            h.write_u32(attempt);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            tmp.push(format!(".{:016x}", h.finish()));
        }
        let tmp = PathBuf::from(tmp);
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o644)
            .open(&tmp);
        match opened {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{TEMPORARY_TRIES} temporary names next to it exist already (files or links \
             someone else made?): check who can write to its directory"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_no_colon_and_fit_systemds_limit() {
        let k = key("tcp:port=0:interface=127.0.0.1");
        assert_eq!(k, "ep.tcp%3Aport=0%3Ainterface=127.0.0.1");
        let k = key(r"unix:address=/run/a b\:c%d");
        assert!(!k.contains(':') && !k.contains(' '), "{k}");
        assert!(k.bytes().all(|b| b.is_ascii_graphic()), "{k}");
        let long = format!("unix:address=/{}", "x".repeat(400));
        let k = key(&long);
        assert!(k.len() + SUFFIX_ROOM <= FDNAME_MAX, "{k}");
        assert!(k.starts_with("ep.h"), "{k}");
        assert_ne!(key(&long), key(&format!("{long}y")));
    }

    /// Issue 30 item 8: a link planted at the temporary name is neither followed nor removed;
    /// the pid file is a new regular file, written in full.
    #[test]
    fn the_pid_file_is_not_written_through_a_planted_link() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("endpoints-pidfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("echo.pid");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n")?;
        let planted = dir.join(format!("echo.pid.tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted)?;
        // A dangling one too, where a plain write would create the target.
        std::os::unix::fs::symlink(dir.join("created"), &path)?;
        write_pid_file(&path, 4242)?;
        assert_eq!(std::fs::read_to_string(&victim)?, "precious\n");
        assert!(
            std::fs::symlink_metadata(&planted)?
                .file_type()
                .is_symlink()
        );
        assert!(
            !dir.join("created").exists(),
            "the link at PATH was replaced, not followed"
        );
        let meta = std::fs::symlink_metadata(&path)?;
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read_to_string(&path)?, "4242\n");
        write_pid_file(&path, 7)?;
        assert_eq!(std::fs::read_to_string(&path)?, "7\n");
        // Only the pid file, the victim and the planted link: no temporary left behind.
        assert_eq!(std::fs::read_dir(&dir)?.count(), 3);
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn two_listeners_on_one_description_get_their_own_names() {
        // A description no other test uses: the counters are process-wide.
        let d = "tcp:port=0:interface=127.0.0.9";
        let a = claim(&d);
        let b = claim(&d);
        assert_eq!(a.name, format!("{}#0", key(d)));
        assert_eq!(b.name, format!("{}#1", key(d)));
        assert!(a.inherited.is_none() && b.inherited.is_none());
    }
}

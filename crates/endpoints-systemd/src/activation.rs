//! The descriptors systemd passed to this process, read with libsystemd's rules.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The first passed descriptor (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The variables of the socket-activation protocol.
pub const VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// One passed descriptor.
#[derive(Debug)]
pub(crate) enum Slot {
    /// Owned here until a listener adopts it.
    Ready(OwnedFd),
    /// Adopted by a listener, which owns it now (or closed when its adoption failed after it
    /// was taken): never offered again.
    Taken,
    /// A number only ([`Activation::from_vars`], [`Activation::described`]): never adopted,
    /// never closed.
    Described,
    /// Not open when the variables were read.
    NotOpen,
}

/// Descriptors passed by socket activation, with their names.
///
/// Rules (as libsystemd's `sd_listen_fds_with_names`, not Twisted's):
/// * nothing was passed unless `LISTEN_PID` is this process's id;
/// * `LISTEN_FDS` descriptors starting at 3, no more than the open-files limit
///   (`RLIMIT_NOFILE`) allows;
/// * without `LISTEN_FDNAMES` every descriptor is named `unknown`;
/// * a `LISTEN_FDNAMES` whose count differs from `LISTEN_FDS` is an error.
///
/// Only the state read from the environment (by [`init`](crate::init) or on first use) and
/// one made by [`with_descriptors`](Self::with_descriptors) own their descriptors: a
/// `systemd:` listener adopts each at most once, and a descriptor whose adoption failed is
/// either still owned here (the checks failed: it was not touched) or closed and never
/// offered again. [`from_vars`](Self::from_vars) and [`described`](Self::described) only
/// describe descriptors (endpoints can be built from them, not listened on).
#[derive(Debug, Default)]
pub struct Activation {
    fds: Vec<RawFd>,
    names: Vec<String>,
    slots: Vec<Slot>,
    /// Why nothing was passed, when nothing was (for error messages).
    absent: Option<String>,
}

impl Activation {
    /// Interpret the three variables for the process `own_pid`. The result only describes
    /// the descriptors; it owns none of them.
    pub fn from_vars(
        listen_pid: Option<&str>,
        listen_fds: Option<&str>,
        listen_fdnames: Option<&str>,
        own_pid: u32,
    ) -> Result<Self, String> {
        let none = |why: String| {
            Ok(Self {
                absent: Some(why),
                ..Self::default()
            })
        };
        let n = match passed_count(listen_pid, listen_fds, own_pid) {
            Count::Absent(why) => return none(why),
            Count::Invalid(why) | Count::TooMany(why) => return Err(why),
            Count::Passed(n) => n,
        };
        // `n` is bounded by the open-files limit: nothing below allocates more than that.
        let names: Vec<String> = match listen_fdnames {
            None => vec!["unknown".to_owned(); n],
            // As libsystemd's strv_split: an empty value names no descriptor.
            Some("") => Vec::new(),
            Some(s) => s.split(':').map(str::to_owned).collect(),
        };
        if names.len() != n {
            return Err(format!(
                "LISTEN_FDNAMES names {} descriptor(s) but LISTEN_FDS={n}",
                names.len()
            ));
        }
        let fds: Vec<RawFd> = (LISTEN_FDS_START..).take(n).collect();
        let slots = fds.iter().map(|_| Slot::Described).collect();
        Ok(Self {
            fds,
            names,
            slots,
            absent: None,
        })
    }

    /// Descriptors handed over by their owner (programs that receive sockets another way,
    /// and tests), with their names. On error the descriptors are closed.
    pub fn with_descriptors(fds: Vec<OwnedFd>, names: Vec<String>) -> Result<Self, String> {
        check_names(fds.len(), &names)?;
        let numbers = fds.iter().map(|fd| raw(fd.as_fd())).collect();
        Ok(Self {
            fds: numbers,
            names,
            slots: fds.into_iter().map(Slot::Ready).collect(),
            absent: None,
        })
    }

    /// Descriptor numbers and names, described only: endpoints can be built from this state
    /// (to check descriptions), but `listen()` adopts nothing and nothing is ever closed.
    pub fn described(fds: Vec<RawFd>, names: Vec<String>) -> Result<Self, String> {
        check_names(fds.len(), &names)?;
        let slots = fds.iter().map(|_| Slot::Described).collect();
        Ok(Self {
            fds,
            names,
            slots,
            absent: None,
        })
    }

    /// The passed descriptors, in order.
    pub fn descriptors(&self) -> &[RawFd] {
        &self.fds
    }

    /// The names, index-aligned with [`descriptors`](Self::descriptors).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Name → descriptor; a repeated name maps to its last descriptor (as Twisted).
    pub fn named(&self) -> BTreeMap<&str, RawFd> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.fds.iter().copied())
            .collect()
    }

    /// Why nothing was passed, if nothing was.
    pub fn absent_reason(&self) -> Option<&str> {
        self.absent.as_deref()
    }

    /// Replace the process-wide activation state with this one (programs that get their
    /// descriptors another way, and tests). Descriptors the previous state still owned (not
    /// adopted) are closed.
    pub fn install(self) {
        let previous = std::mem::replace(&mut *lock(), Ok(self));
        drop(previous);
    }

    pub(crate) fn position_of_name(&self, name: &str) -> Option<usize> {
        self.names.iter().rposition(|n| n == name)
    }

    /// The slots, for the environment reader to fill.
    pub(crate) fn slots_mut(&mut self) -> &mut [Slot] {
        &mut self.slots
    }

    /// Take descriptor `i` for adoption if `check` accepts it. When `check` fails the
    /// descriptor stays here, untouched; once taken it is never offered again.
    pub(crate) fn take_checked(
        &mut self,
        i: usize,
        check: impl FnOnce(BorrowedFd<'_>) -> io::Result<()>,
    ) -> io::Result<OwnedFd> {
        let number = self.fds.get(i).copied().unwrap_or(-1);
        let Some(slot) = self.slots.get_mut(i) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("descriptor {number} is no longer available"),
            ));
        };
        match slot {
            Slot::Ready(fd) => check(fd.as_fd())?,
            Slot::Taken => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("descriptor {number} was already adopted by another listener"),
                ));
            }
            Slot::Described => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "descriptor {number} is only described (Activation::from_vars or \
                         Activation::described), not owned: hand descriptors over with \
                         Activation::with_descriptors"
                    ),
                ));
            }
            Slot::NotOpen => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("descriptor {number} is not open"),
                ));
            }
        }
        match std::mem::replace(slot, Slot::Taken) {
            Slot::Ready(fd) => Ok(fd),
            other => {
                *slot = other;
                Err(io::Error::other(format!(
                    "descriptor {number} is no longer available"
                )))
            }
        }
    }
}

fn raw(fd: BorrowedFd<'_>) -> RawFd {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

fn check_names(fds: usize, names: &[String]) -> Result<(), String> {
    if names.len() == fds {
        Ok(())
    } else {
        Err(format!("{} names for {fds} descriptors", names.len()))
    }
}

/// What `LISTEN_PID` and `LISTEN_FDS` say, before any name is read.
pub(crate) enum Count {
    /// Nothing was passed to this process (why).
    Absent(String),
    /// The variables are wrong (why).
    Invalid(String),
    /// A count above the open-files limit (why).
    TooMany(String),
    /// This many descriptors, starting at 3, all below the open-files limit.
    Passed(usize),
}

/// Read `LISTEN_PID` and `LISTEN_FDS`, and bound the count by the open-files limit before
/// anything is allocated for it.
pub(crate) fn passed_count(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    own_pid: u32,
) -> Count {
    let Some(pid) = listen_pid else {
        return Count::Absent(
            "LISTEN_PID is not set: this process was not socket-activated".into(),
        );
    };
    if pid.trim().parse::<u32>().ok() != Some(own_pid) {
        return Count::Absent(format!(
            "LISTEN_PID={pid} names another process (this is {own_pid})"
        ));
    }
    let Some(count) = listen_fds else {
        return Count::Absent("LISTEN_FDS is not set".into());
    };
    let n = match count.trim().parse::<u32>() {
        Ok(0) => return Count::Absent("LISTEN_FDS=0: no descriptors were passed".into()),
        Ok(n) => u64::from(n),
        Err(_) => return Count::Invalid(format!("LISTEN_FDS={count} is not a descriptor count")),
    };
    let limit = crate::env::open_files_limit();
    if n + LISTEN_FDS_START as u64 > limit {
        return Count::TooMany(format!(
            "LISTEN_FDS={n} is more descriptors than this process may have open \
             (RLIMIT_NOFILE is {limit}, and passed descriptors start at {LISTEN_FDS_START})"
        ));
    }
    match usize::try_from(n) {
        Ok(n) => Count::Passed(n),
        Err(_) => Count::Invalid(format!("LISTEN_FDS={n} is not a descriptor count")),
    }
}

type State = Result<Activation, String>;

static STATE: OnceLock<Mutex<State>> = OnceLock::new();

pub(crate) fn lock() -> MutexGuard<'static, State> {
    STATE
        .get_or_init(|| Mutex::new(crate::env::read()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Read the activation variables now (see [`init`](crate::init)). They are read (and the
/// descriptors claimed) once per process: if they were already read on first use, or by an
/// earlier call, that state is kept, and with `remove` the variables are removed now.
pub(crate) fn init_state(remove: bool) -> Result<usize, String> {
    let m = STATE.get_or_init(|| Mutex::new(crate::env::read()));
    if remove {
        crate::env::remove_variables();
    }
    let state = m.lock().unwrap_or_else(|p| p.into_inner());
    state.as_ref().map(|a| a.fds.len()).map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libsystemd_rules() {
        let a = Activation::from_vars(Some("7"), Some("2"), Some("web:admin"), 7).expect("ok");
        assert_eq!(a.descriptors(), &[3, 4]);
        assert_eq!(a.named().get("admin"), Some(&4));

        let a = Activation::from_vars(Some("7"), Some("2"), None, 7).expect("ok");
        assert_eq!(
            a.names(),
            &["unknown", "unknown"],
            "missing names are `unknown`, fds kept"
        );

        let e =
            Activation::from_vars(Some("7"), Some("2"), Some("a"), 7).expect_err("count mismatch");
        assert!(e.contains("names 1 descriptor(s) but LISTEN_FDS=2"), "{e}");

        let a = Activation::from_vars(Some("8"), Some("2"), Some("a:b"), 7).expect("ok");
        assert!(a.descriptors().is_empty());
        assert!(
            a.absent_reason()
                .expect("reason")
                .contains("another process")
        );

        assert!(
            Activation::from_vars(None, Some("2"), None, 7)
                .expect("ok")
                .descriptors()
                .is_empty()
        );
        assert!(
            Activation::from_vars(Some("7"), None, None, 7)
                .expect("ok")
                .descriptors()
                .is_empty()
        );
        assert!(Activation::from_vars(Some("7"), Some("x"), None, 7).is_err());
        assert!(Activation::from_vars(Some("7"), Some("4294967295"), None, 7).is_err());

        // More descriptors than the open-files limit allows: an error, before any allocation.
        let limit = crate::env::open_files_limit();
        let over = (limit - LISTEN_FDS_START as u64 + 1).to_string();
        let e = Activation::from_vars(Some("7"), Some(&over), None, 7).expect_err("over");
        assert!(e.contains("RLIMIT_NOFILE"), "{e}");
        let e = Activation::from_vars(Some("7"), Some("2000000000"), None, 7).expect_err("huge");
        assert!(
            e.contains("more descriptors than this process may have open"),
            "{e}"
        );
        let most = (limit - LISTEN_FDS_START as u64).to_string();
        let a = Activation::from_vars(Some("7"), Some(&most), None, 7).expect("at the limit");
        assert_eq!(
            a.descriptors().last().copied(),
            RawFd::try_from(limit - 1).ok()
        );

        let a = Activation::from_vars(Some("7"), Some("3"), Some("web:web:admin"), 7).expect("ok");
        assert_eq!(
            a.named().get("web"),
            Some(&4),
            "a repeated name maps to its last descriptor"
        );
    }
}

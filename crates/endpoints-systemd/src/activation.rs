//! The descriptors systemd passed to this process, read with libsystemd's rules.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The first passed descriptor (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The variables of the socket-activation protocol.
pub const VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// Descriptors passed by socket activation, with their names.
///
/// Rules (as libsystemd's `sd_listen_fds_with_names`, not Twisted's):
/// * nothing was passed unless `LISTEN_PID` is this process's id;
/// * `LISTEN_FDS` descriptors starting at 3;
/// * without `LISTEN_FDNAMES` every descriptor is named `unknown`;
/// * a `LISTEN_FDNAMES` whose count differs from `LISTEN_FDS` is an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activation {
    fds: Vec<RawFd>,
    names: Vec<String>,
    taken: Vec<bool>,
    /// Why nothing was passed, when nothing was (for error messages).
    absent: Option<String>,
}

impl Activation {
    /// Interpret the three variables for the process `own_pid`.
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
        let Some(pid) = listen_pid else {
            return none("LISTEN_PID is not set: this process was not socket-activated".into());
        };
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return none(format!(
                "LISTEN_PID={pid} names another process (this is {own_pid})"
            ));
        }
        let Some(count) = listen_fds else {
            return none("LISTEN_FDS is not set".into());
        };
        let n: usize = match count.trim().parse::<u32>() {
            Ok(0) => return none("LISTEN_FDS=0: no descriptors were passed".into()),
            Ok(n) if i64::from(n) + i64::from(LISTEN_FDS_START) <= i64::from(RawFd::MAX) => {
                n as usize
            }
            _ => return Err(format!("LISTEN_FDS={count} is not a descriptor count")),
        };
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
        let fds = (0..n).map(|i| LISTEN_FDS_START + i as RawFd).collect();
        Ok(Self {
            fds,
            names,
            taken: vec![false; n],
            absent: None,
        })
    }

    /// Explicit descriptors and names (tests, and programs that receive sockets another way).
    pub fn with_descriptors(fds: Vec<RawFd>, names: Vec<String>) -> Result<Self, String> {
        if names.len() != fds.len() {
            return Err(format!(
                "{} names for {} descriptors",
                names.len(),
                fds.len()
            ));
        }
        let taken = vec![false; fds.len()];
        Ok(Self {
            fds,
            names,
            taken,
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
    /// descriptors another way, and tests).
    pub fn install(self) {
        *lock() = Ok(self);
    }

    pub(crate) fn position_of_name(&self, name: &str) -> Option<usize> {
        self.names.iter().rposition(|n| n == name)
    }

    /// Mark descriptor `i` adopted; `false` if it already was.
    pub(crate) fn take(&mut self, i: usize) -> bool {
        match self.taken.get_mut(i) {
            Some(t) if !*t => {
                *t = true;
                true
            }
            _ => false,
        }
    }

    /// Give back descriptor `i` (its adoption failed before ownership was taken).
    pub(crate) fn give_back(&mut self, i: usize) {
        if let Some(t) = self.taken.get_mut(i) {
            *t = false;
        }
    }
}

type State = Result<Activation, String>;

static STATE: OnceLock<Mutex<State>> = OnceLock::new();

pub(crate) fn lock() -> MutexGuard<'static, State> {
    STATE
        .get_or_init(|| Mutex::new(crate::env::read(false)))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Read the activation variables now (see [`init`](crate::init)).
pub(crate) fn init_state(remove: bool) -> Result<usize, String> {
    let state = crate::env::read(remove);
    let result = state.as_ref().map(|a| a.fds.len()).map_err(Clone::clone);
    match STATE.get() {
        Some(m) => *m.lock().unwrap_or_else(|p| p.into_inner()) = state,
        None => {
            let _ = STATE.set(Mutex::new(state));
        }
    }
    result
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

        let a = Activation::from_vars(Some("7"), Some("3"), Some("web:web:admin"), 7).expect("ok");
        assert_eq!(
            a.named().get("web"),
            Some(&4),
            "a repeated name maps to its last descriptor"
        );
    }
}

//! The far end as a program (`exec:`): one shell script per scenario, doing what a listener's
//! end does in the other rows. What the program received goes to `dir/server.out`.

use std::path::{Path, PathBuf};

use crate::fixture::Fixture;
use crate::table::{RESET_AFTER, Scenario};

/// The program's arguments, and the file its received bytes go to (if it keeps them).
pub(crate) fn program_for(fx: &Fixture, dir: &Path, scenario: Scenario) -> (Vec<String>, PathBuf) {
    let out = dir.join("server.out");
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let p = |p: &Path| p.display().to_string();
    let argv = match scenario {
        // Reads everything into the file; sends nothing.
        Scenario::Upload => s(&["sh", "-c", r#"exec cat >"$0""#, &p(&out)]),
        // Sends the file; reads nothing.
        Scenario::Download => s(&["cat", &p(&fx.data_file)]),
        Scenario::Echo => s(&["cat"]),
        // Reads the request to its end, then answers.
        Scenario::HalfCloseClientFirst => s(&[
            "sh",
            "-c",
            r#"cat >"$0" && exec cat "$1""#,
            &p(&out),
            &p(&fx.second_file),
        ]),
        // Sends the greeting, closes its output, then reads the answer.
        Scenario::HalfCloseServerFirst => s(&[
            "sh",
            "-c",
            r#"cat "$1" && exec >&- && exec cat >"$0""#,
            &p(&out),
            &p(&fx.first_file),
        ]),
        // Reads 1 MiB, then dies by SIGKILL.
        Scenario::ResetDuringUpload => s(&[
            "sh",
            "-c",
            &format!("head -c {RESET_AFTER} >/dev/null; kill -9 $$"),
        ]),
        // Sends; the client end goes away (relay cells only).
        Scenario::ResetDuringDownload => s(&["cat", &p(&fx.data_file)]),
        // Sends 1 MiB, pauses (longer than the relay's linger), sends the rest.
        Scenario::IdlePeer => s(&[
            "sh",
            "-c",
            &format!(
                r#"head -c {RESET_AFTER} "$0" && sleep {} && exec tail -c +{} "$0""#,
                crate::table::PROGRAM_IDLE.as_secs(),
                RESET_AFTER + 1
            ),
            &p(&fx.data_file),
        ]),
        // Sends 1 MiB, then waits (the row has no liveness check: this cell is excluded).
        Scenario::StalledPeer => s(&[
            "sh",
            "-c",
            &format!(r#"head -c {RESET_AFTER} "$0" && exec sleep 600"#),
            &p(&fx.data_file),
        ]),
    };
    (argv, out)
}

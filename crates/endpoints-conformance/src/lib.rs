//! Checks every `endpoints` plugin should pass. Add this crate as a dev-dependency of your
//! transport crate and call it from a test:
//!
//! ```no_run
//! use endpoints_conformance::Suite;
//! # use endpoints_core as _;
//!
//! #[test]
//! fn conformance() {
//!     Suite::server("tcp")
//!         .valid("tcp:0:interface=127.0.0.1")
//!         .invalid("tcp:70000", endpoints_core::ErrorKind::InvalidValue)
//!         .run();
//! }
//!
//! #[tokio::test]
//! async fn echo() {
//!     endpoints_conformance::echo("tcp:0:interface=127.0.0.1", |listener| {
//!         format!("tcp:127.0.0.1:{}", listener.ip().map(|a| a.port()).unwrap_or(0))
//!     })
//!     .await;
//! }
//! ```
//!
//! [`Suite::run`] checks, and panics with a precise message on the first failure:
//!
//! * the prefix is registered exactly once on that side (case-insensitively);
//! * every parameter has help text, a unique name, contiguous positions, and a default that
//!   its own type accepts;
//! * each valid example builds, and its `Display` (the canonical form) parses and builds
//!   again to the same canonical form;
//! * each invalid example fails with the expected [`ErrorKind`] and a span inside the input;
//! * hostile values for every parameter, and thousands of random descriptions, give errors
//!   or endpoints but never a panic.
//!
//! [`echo`] listens, connects, sends a payload both ways with a half-close, closes the
//! listener, and checks that the same address can be listened on again at once.
//!
//! [`peer_program`] is for tests that need a real program on the other side (haproxy,
//! openssl, curl): it says whether the program is there, printing why a test skips when it
//! is not, and fails the test instead under `CI=true`, where a missing peer is a setup error.
//!
//! # Crate feature flags
//!
//! None.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use endpoints_core::params::{Param, ParamKind};
use endpoints_core::registry::{self, Plugin, Side};
use endpoints_core::{Address, Description, ErrorKind, Field, ParseError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hostile values tried for every parameter.
pub const HOSTILE_VALUES: &[&str] = &[
    "",
    " ",
    "-1",
    "0",
    "1",
    "65535",
    "65536",
    "4294967296",
    "99999999999999999999999",
    "1e400",
    "NaN",
    "inf",
    "0.000000001",
    "\0",
    "é",
    "[",
    "]",
    "[::1]",
    "[127.0.0.1]",
    "::",
    "\\",
    "=",
    "0o",
    "0x10",
    "+1",
    "1_000",
    "/",
    "/nonexistent/dir/file",
    "@abstract",
];

/// A set of checks for one prefix on one side.
#[derive(Debug)]
#[must_use = "a suite does nothing until `run` is called"]
pub struct Suite {
    side: Side,
    prefix: String,
    valid: Vec<String>,
    invalid: Vec<(String, ErrorKind)>,
    random_cases: usize,
}

impl Suite {
    /// Checks for the server type `prefix`.
    pub fn server(prefix: &str) -> Self {
        Self::new(Side::Server, prefix)
    }

    /// Checks for the client type `prefix`.
    pub fn client(prefix: &str) -> Self {
        Self::new(Side::Client, prefix)
    }

    fn new(side: Side, prefix: &str) -> Self {
        Self {
            side,
            prefix: prefix.to_owned(),
            valid: Vec::new(),
            invalid: Vec::new(),
            random_cases: 5_000,
        }
    }

    /// A description that must build.
    pub fn valid(mut self, description: &str) -> Self {
        self.valid.push(description.to_owned());
        self
    }

    /// A description that must fail with `kind`.
    pub fn invalid(mut self, description: &str, kind: ErrorKind) -> Self {
        self.invalid.push((description.to_owned(), kind));
        self
    }

    /// How many random descriptions to try (default 5,000).
    pub fn random_cases(mut self, n: usize) -> Self {
        self.random_cases = n;
        self
    }

    /// Run every check; panics on the first failure.
    pub fn run(self) {
        let plugin = registered_once(self.side, &self.prefix);
        check_params(plugin);
        assert!(
            !self.valid.is_empty(),
            "give the suite at least one valid description for `{}`",
            self.prefix
        );
        for text in &self.valid {
            round_trip(self.side, text);
        }
        for (text, kind) in &self.invalid {
            let d = match Description::parse(text) {
                Ok(d) => d,
                Err(e) => {
                    assert_eq!(e.kind(), *kind, "`{text}`: {e}");
                    continue;
                }
            };
            match build(self.side, &d) {
                Ok(desc) => panic!("`{text}` built `{desc}`, expected a {kind} error"),
                Err(e) => {
                    assert_eq!(
                        e.kind(),
                        *kind,
                        "`{text}` gave the wrong kind of error: {e}"
                    );
                    assert!(
                        e.span().end <= text.len(),
                        "`{text}`: span {:?} is outside the input",
                        e.span()
                    );
                    assert!(!e.message().is_empty(), "`{text}`: empty error message");
                }
            }
        }
        hostile_values(self.side, plugin, &self.valid);
        random_descriptions(self.side, &self.prefix, plugin, self.random_cases);
    }
}

fn build(side: Side, d: &Description) -> Result<String, ParseError> {
    match side {
        Side::Client => registry::build_client(d).map(|e| e.to_string()),
        Side::Server => registry::build_server(d).map(|e| e.to_string()),
    }
}

fn build_no_panic(side: Side, d: &Description) -> Result<String, ParseError> {
    match catch_unwind(AssertUnwindSafe(|| build(side, d))) {
        Ok(r) => r,
        Err(_) => panic!("building `{d}` panicked"),
    }
}

/// Assert `prefix` is registered exactly once on `side`; returns the plugin.
pub fn registered_once(side: Side, prefix: &str) -> &'static Plugin {
    let found: Vec<&'static Plugin> = registry::plugins()
        .filter(|p| p.side() == side && p.prefix().eq_ignore_ascii_case(prefix))
        .collect();
    match found.as_slice() {
        [one] => one,
        [] => panic!(
            "no {side} plugin `{prefix}` is registered; is the crate linked (`use your_crate as _;`)? \
             registered: {:?}",
            registry::prefixes(side)
        ),
        many => panic!(
            "{side} prefix `{prefix}` is registered {} times: {many:?}",
            many.len()
        ),
    }
}

/// Assert a plugin's parameter declarations are complete and consistent.
pub fn check_params(plugin: &Plugin) {
    let p = plugin.prefix();
    assert!(
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
        "prefix `{p}` must be non-empty ASCII letters, digits, `-`, `_` or `.`"
    );
    assert!(!plugin.summary().is_empty(), "`{p}` has no summary");
    let params = plugin.params();
    if let Some(transport) = plugin.transport() {
        let bad = transport.problems(params);
        assert!(
            bad.is_empty(),
            "`{p}`: its transport declaration names parameters it does not have: {}",
            bad.join("; ")
        );
    }
    let mut positions: Vec<usize> = Vec::new();
    for (i, param) in params.iter().enumerate() {
        assert!(
            !param.help.is_empty(),
            "`{p}`: parameter `{}` has no help text",
            param.name
        );
        assert!(
            params[..i].iter().all(|q| q.name != param.name),
            "`{p}`: parameter `{}` is declared twice",
            param.name
        );
        if let Some(pos) = param.position {
            positions.push(pos);
        }
        if let Some(default) = param.default {
            assert!(
                !param.required,
                "`{p}`: `{}` is required and has a default",
                param.name
            );
            check_default(p, param, default);
        }
    }
    positions.sort_unstable();
    for (i, pos) in positions.iter().enumerate() {
        assert_eq!(
            *pos, i,
            "`{p}`: positions must be 0, 1, 2... without gaps or repeats: {positions:?}"
        );
    }
}

fn check_default(prefix: &str, param: &Param, default: &str) {
    let ok = match param.kind {
        ParamKind::Port => default.parse::<u16>().is_ok(),
        ParamKind::UInt => default.parse::<u32>().is_ok(),
        ParamKind::Duration => default.parse::<f64>().is_ok_and(|s| s >= 0.0),
        ParamKind::Mode => u32::from_str_radix(default.trim_start_matches("0o"), 8).is_ok(),
        ParamKind::Bool => ["0", "1"].contains(&default),
        ParamKind::Choice(words) => words.contains(&default),
        _ => true,
    };
    assert!(
        ok,
        "`{prefix}`: the default `{default}` of `{}` is not a valid {}",
        param.name, param.kind
    );
}

/// Assert `text` builds on `side`, and that its canonical form builds to itself.
pub fn round_trip(side: Side, text: &str) -> String {
    let d = Description::parse(text).unwrap_or_else(|e| panic!("`{text}` does not parse:\n{e}"));
    let canonical =
        build_no_panic(side, &d).unwrap_or_else(|e| panic!("`{text}` does not build:\n{e}"));
    let again = Description::parse(&canonical)
        .unwrap_or_else(|e| panic!("canonical `{canonical}` does not parse:\n{e}"));
    let canonical2 = build_no_panic(side, &again)
        .unwrap_or_else(|e| panic!("canonical `{canonical}` does not build:\n{e}"));
    assert_eq!(
        canonical, canonical2,
        "the canonical form of `{text}` is not stable"
    );
    canonical
}

fn hostile_values(side: Side, plugin: &Plugin, valid: &[String]) {
    for base in valid {
        let Ok(d) = Description::parse(base) else {
            continue;
        };
        for param in plugin.params() {
            for value in HOSTILE_VALUES {
                let mut probe = d.clone();
                probe.set(param.name, *value);
                if let Err(e) = build_no_panic(side, &probe) {
                    let shown = probe.to_string();
                    assert!(!e.message().is_empty(), "`{shown}`: empty error message");
                }
            }
        }
    }
}

fn random_descriptions(side: Side, prefix: &str, plugin: &Plugin, cases: usize) {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let names: Vec<&str> = plugin.params().iter().map(|p| p.name).collect();
    for _ in 0..cases {
        let mut fields = vec![Field::positional(prefix)];
        for _ in 0..rng.below(6) {
            let value = random_text(&mut rng);
            let field = match rng.below(3) {
                0 => Field::positional(value),
                1 if !names.is_empty() => Field::keyword(names[rng.below(names.len())], value),
                _ => Field::keyword(random_text(&mut rng), value),
            };
            fields.push(field);
        }
        let Some(d) = Description::from_fields(fields) else {
            continue;
        };
        // Through text, as a user would give it.
        if let Ok(reparsed) = Description::parse(&d.to_string()) {
            let _ = build_no_panic(side, &reparsed);
        }
    }
}

fn random_text(rng: &mut XorShift) -> String {
    const ALPHABET: &[&str] = &[
        "0",
        "1",
        "8",
        "9",
        "65535",
        "a",
        "z",
        ":",
        "=",
        "\\",
        "[",
        "]",
        ".",
        "-",
        "/",
        "é",
        " ",
        "\0",
        "::1",
        "127.0.0.1",
    ];
    (0..rng.below(5))
        .map(|_| ALPHABET[rng.below(ALPHABET.len())])
        .collect()
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

fn stalled<T>(what: &'static str) -> impl FnOnce(tokio::time::error::Elapsed) -> T {
    move |_| panic!("{what}: no progress within {ECHO_STEP_TIMEOUT:?}")
}

/// How long [`echo`] waits for any one step.
pub const ECHO_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Listen on `server`, connect with the client description `client_for(listener address)`,
/// echo a payload with a half-close, close the listener, and listen again on the listener's
/// own canonical description (which names the real address) to show the address was released.
///
/// Panics with a precise message on failure. Needs a tokio runtime with I/O and timers.
pub async fn echo(server: &str, client_for: impl Fn(&Address) -> String) {
    let d = Description::parse(server).unwrap_or_else(|e| panic!("`{server}`:\n{e}"));
    let endpoint = registry::build_server(&d).unwrap_or_else(|e| panic!("`{server}`:\n{e}"));
    let mut listener = tokio::time::timeout(ECHO_STEP_TIMEOUT, endpoint.listen())
        .await
        .unwrap_or_else(stalled("listen"))
        .unwrap_or_else(|e| panic!("listen on `{server}`: {e}"));
    let bound = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr of `{listener}`: {e}"));
    let client_text = client_for(&bound);
    let cd = Description::parse(&client_text).unwrap_or_else(|e| panic!("`{client_text}`:\n{e}"));
    let client = registry::build_client(&cd).unwrap_or_else(|e| panic!("`{client_text}`:\n{e}"));

    let payload: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let server_side = async {
        let mut conn = listener
            .accept()
            .await
            .unwrap_or_else(|e| panic!("accept on `{server}`: {e}"));
        let mut got = Vec::new();
        conn.read_to_end(&mut got)
            .await
            .unwrap_or_else(|e| panic!("server read: {e}"));
        conn.write_all(&got)
            .await
            .unwrap_or_else(|e| panic!("server write: {e}"));
        conn.shutdown()
            .await
            .unwrap_or_else(|e| panic!("server shutdown: {e}"));
        got.len()
    };
    let client_side = async {
        let conn = client
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect with `{client_text}`: {e}"));
        let (mut rd, mut wr) = tokio::io::split(conn);
        let writer = async {
            wr.write_all(&payload)
                .await
                .unwrap_or_else(|e| panic!("client write: {e}"));
            wr.shutdown()
                .await
                .unwrap_or_else(|e| panic!("client shutdown (half-close): {e}"));
        };
        let reader = async {
            let mut back = Vec::new();
            rd.read_to_end(&mut back)
                .await
                .unwrap_or_else(|e| panic!("client read: {e}"));
            back
        };
        tokio::join!(writer, reader).1
    };
    let (received, echoed) = tokio::time::timeout(ECHO_STEP_TIMEOUT, async {
        tokio::join!(server_side, client_side)
    })
    .await
    .unwrap_or_else(stalled("echo"));
    assert_eq!(
        received,
        payload.len(),
        "the server received {received} of {} bytes",
        payload.len()
    );
    assert!(
        echoed == payload,
        "the echoed bytes differ from the sent bytes"
    );

    let real = listener.to_string();
    tokio::time::timeout(ECHO_STEP_TIMEOUT, listener.close())
        .await
        .unwrap_or_else(stalled("close"))
        .unwrap_or_else(|e| panic!("close `{real}`: {e}"));
    let again = registry::build_server(
        &Description::parse(&real).unwrap_or_else(|e| panic!("`{real}`:\n{e}")),
    )
    .unwrap_or_else(|e| panic!("the listener's description `{real}` does not build:\n{e}"));
    let relisten = again
        .listen()
        .await
        .unwrap_or_else(|e| panic!("after close(), listening again on `{real}` failed: {e}"));
    relisten
        .close()
        .await
        .unwrap_or_else(|e| panic!("close `{real}`: {e}"));
}

/// Whether `program` runs (`program probe_arg` exits successfully). When it does not, prints
/// that the calling test skips and which Debian package provides it, and returns `false`;
/// under `CI=true` it panics instead, so a CI machine without the peer fails loudly.
///
/// ```no_run
/// #[test]
/// fn against_real_haproxy() {
///     if !endpoints_conformance::peer_program("haproxy", "-v", "haproxy") {
///         return;
///     }
///     // ...
/// }
/// ```
pub fn peer_program(program: &str, probe_arg: &str, package: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg(probe_arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "`{program}` is missing and CI=true: install the Debian package `{package}`"
        );
        println!("skipping: `{program}` not found (Debian package `{package}`)");
    }
    found
}

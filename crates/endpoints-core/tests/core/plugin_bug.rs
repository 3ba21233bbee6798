//! issue 24 item 12: a plugin that asks [`Args`] for a parameter it did not declare is a bug
//! in the plugin. Every input that reaches the lookup gets a `PluginBug` error naming the
//! plugin, its crate and the parameter; nothing panics.

use std::fmt;
use std::io;

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::registry::{build_client, build_server};
use endpoints_core::{
    ClientEndpoint, Connection, Description, ErrorKind, Listener, ParseError, ServerEndpoint,
    async_trait,
};
use proptest::prelude::*;

static PARAMS: &[Param] = &[
    Param::required("port", ParamKind::Port)
        .at(0)
        .help("a port"),
    Param::optional("timeout", ParamKind::Duration)
        .default("30")
        .help("a timeout"),
];

#[derive(Debug)]
struct Fake(Description);

impl fmt::Display for Fake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait]
impl ClientEndpoint for Fake {
    async fn connect(&self) -> io::Result<Connection> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "fake endpoint"))
    }
}

#[async_trait]
impl ServerEndpoint for Fake {
    async fn listen(&self) -> io::Result<Box<dyn Listener>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "fake endpoint"))
    }
}

/// Asks for `prot` (a typo of `port`) with `get`, and goes on as if it were absent.
fn typo_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, PARAMS)?;
    let port = match args.get("prot") {
        Some(v) => v.port()?,
        None => 80,
    };
    Ok(Box::new(Fake(format!("typo:{port}").parse()?)))
}

/// Asks whether `interface` was given, then for `backlog` with `required`, and swallows
/// that error (the registry still reports the bug).
fn undeclared_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, PARAMS)?;
    let _ = args.is_given("interface");
    let _ = args.required("backlog");
    Ok(Box::new(Fake(args.canonical())))
}

/// Asks `required` for an undeclared parameter and returns its error.
fn required_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, PARAMS)?;
    args.required("host")?;
    Ok(Box::new(Fake(args.canonical())))
}

/// Builds `typo:` inside its own build, as a wrapper builds its inner description.
fn wrapper_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let args = Args::parse(d, PARAMS)?;
    let port = args.required("port")?.port()?;
    build_client(&format!("typo:{port}").parse()?)
}

endpoints_core::register_client! { prefix: "typo", summary: "asks for `prot`", params: PARAMS, build: typo_client }
endpoints_core::register_server! { prefix: "undeclared", summary: "asks for two undeclared", params: PARAMS, build: undeclared_server }
endpoints_core::register_client! { prefix: "needshost", summary: "requires `host`", params: PARAMS, build: required_client }
endpoints_core::register_client! { prefix: "wrapsbug", summary: "wraps `typo:`", params: PARAMS, build: wrapper_client }

/// `e` is the plugin-bug error for `plugin` and `param`, pointing at the prefix.
fn assert_bug(e: &ParseError, text: &str, plugin: &str, param: &str) {
    assert_eq!(e.kind(), ErrorKind::PluginBug, "{text}: {e}");
    assert_eq!(e.kind().as_str(), "plugin-bug");
    assert_eq!(e.parameter(), Some(param), "{text}: {e}");
    let message = e.message();
    assert!(
        message.contains(&format!("`{plugin}` plugin (crate `endpoints-core`)")),
        "{text}: names the plugin and its crate: {message}"
    );
    assert!(
        message.contains(&format!("parameter `{param}`")),
        "{text}: {message}"
    );
    assert!(
        message.contains("report this"),
        "{text}: says what to do: {message}"
    );
    let prefix_len = text.find(':').unwrap_or(text.len());
    assert_eq!(e.span(), 0..prefix_len, "{text}: points at the prefix");
    assert!(e.to_string().contains(text), "{text}: shows the input: {e}");
}

#[test]
fn an_undeclared_parameter_is_a_plugin_bug_naming_plugin_and_parameter() {
    for text in ["typo:8080", "typo:port=8080", "TYPO:8080:timeout=5"] {
        let e = build_client(&text.parse().expect("parse"))
            .map(|_| ())
            .expect_err(text);
        assert_bug(&e, text, "typo", "prot");
    }
    // The first undeclared one is named; the plugin's swallowed error does not hide it.
    let text = "undeclared:8080";
    let e = build_server(&text.parse().expect("parse"))
        .map(|_| ())
        .expect_err(text);
    assert_bug(&e, text, "undeclared", "interface");
    let text = "needshost:8080";
    let e = build_client(&text.parse().expect("parse"))
        .map(|_| ())
        .expect_err(text);
    assert_bug(&e, text, "needshost", "host");
    // Inside a wrapper the bug is the inner plugin's, and the wrapper passes it on.
    let text = "wrapsbug:8080";
    let e = build_client(&text.parse().expect("parse"))
        .map(|_| ())
        .expect_err(text);
    assert_eq!(e.kind(), ErrorKind::PluginBug, "{e}");
    assert!(e.message().contains("`typo` plugin"), "{e}");
}

#[test]
fn a_description_error_comes_first_and_builds_after_a_bug_are_clean() {
    // The user's mistake is reported as such: the plugin's bug is never reached.
    let e = build_client(&"typo:prot=1".parse().expect("parse"))
        .map(|_| ())
        .expect_err("unknown key");
    assert_eq!(e.kind(), ErrorKind::UnknownParameter, "{e}");
    let e = build_client(&"typo".parse().expect("parse"))
        .map(|_| ())
        .expect_err("no port");
    assert_eq!(e.kind(), ErrorKind::MissingParameter, "{e}");
    // No bug left behind on the thread for the next build.
    let _ = build_client(&"typo:1".parse().expect("parse"));
    build_client(&"fakeclient:1".parse().expect("parse")).expect("a correct plugin builds");
}

#[test]
fn outside_a_registry_build_an_undeclared_parameter_is_absent_or_an_error() {
    let d: Description = "typo:8080".parse().expect("parse");
    let args = Args::parse(&d, PARAMS).expect("args");
    assert!(args.get("prot").is_none());
    assert!(!args.is_given("prot"));
    let e = args.required("prot").expect_err("undeclared");
    assert_eq!(e.kind(), ErrorKind::PluginBug, "{e}");
    assert_eq!(e.parameter(), Some("prot"));
    assert!(e.message().contains("`typo` does not declare"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    /// No input panics: every description of these plugins is an error, of the user's or
    /// of the plugin's kind.
    #[test]
    fn no_input_panics(rest in "[a-z0-9=:\\\\ ]{0,24}") {
        for prefix in ["typo", "needshost", "wrapsbug"] {
            let text = format!("{prefix}:{rest}");
            if let Ok(d) = text.parse::<Description>() {
                prop_assert!(build_client(&d).is_err(), "{text}");
            }
        }
        let text = format!("undeclared:{rest}");
        if let Ok(d) = text.parse::<Description>() {
            prop_assert!(build_server(&d).is_err(), "{text}");
        }
    }
}

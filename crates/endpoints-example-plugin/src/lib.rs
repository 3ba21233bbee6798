//! `greet:` — a client *wrapper* endpoint, written as a third party would write one: the
//! worked example of `docs/writing-a-plugin.md` (whose code blocks are checked against this
//! file by `tests/guide.rs`).
//!
//! `greet:[text=TEXT:]<any client description>` connects with the inner description, then
//! sends `TEXT` and a newline before handing the connection over (a banner, a login line).
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `text` | `hello` | the line sent after connecting |
//!
//! Link it once: `use endpoints_example_plugin as _;`, then
//! `endpoints::connect("greet:text=HELO\\ me:tcp:localhost:25")`.

use std::fmt;
use std::io;

use endpoints_core::{
    Args, ClientEndpoint, Connection, Description, ErrorKind, Operation, Param, ParamKind,
    ParseError, async_trait, io_error, registry,
};
use tokio::io::AsyncWriteExt;

// ANCHOR: params
/// The wrapper's own options, written before the inner description
/// (`greet:text=hi:tcp:localhost:7000`).
pub static PARAMS: &[Param] = &[Param::optional("text", ParamKind::Text)
    .default("hello")
    .help("the line sent after connecting")];
// ANCHOR_END: params

// ANCHOR: split
/// Split `greet:[options:]<inner>` at the second positional field: the first is the prefix,
/// the second starts the inner description. Both halves share the input, so an error about
/// the inner one points into the text the user wrote.
fn split(d: &Description) -> Result<(Description, Description), ParseError> {
    let mut positionals = d
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_positional())
        .map(|(i, _)| i);
    let end = d.input().map_or(0, |s| s.len());
    let inner_at = positionals.nth(1).ok_or_else(|| {
        d.error(
            ErrorKind::MissingParameter,
            end..end,
            "`greet` wraps another client: write `greet:tcp:localhost:7000`",
        )
    })?;
    match (d.slice(0..inner_at), d.tail(inner_at)) {
        (Some(head), Some(inner)) => Ok((head, inner)),
        _ => Err(d.error(
            ErrorKind::Syntax,
            0..end,
            "cannot find the inner description",
        )),
    }
}
// ANCHOR_END: split

// ANCHOR: build
fn build(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    let (head, inner) = split(d)?;
    let args = Args::parse(&head, PARAMS)?;
    let text = args.required("text")?;
    if text.as_str().contains(['\r', '\n']) {
        return Err(text.invalid("one line: no CR or LF"));
    }
    Ok(Box::new(GreetEndpoint {
        text: text.as_str().to_owned(),
        options: args.canonical(),
        // The registry builds the inner client: any linked prefix works, and its errors keep
        // their spans in the whole text.
        inner: registry::build_client(&inner)?,
    }))
}
// ANCHOR_END: build

// ANCHOR: endpoint
/// A `greet:` client: the inner endpoint, and the line to send.
#[derive(Debug)]
pub struct GreetEndpoint {
    text: String,
    options: Description,
    inner: Box<dyn ClientEndpoint>,
}

/// The canonical form composes: this wrapper's options, then the inner endpoint's own
/// canonical form (`greet:text=hello:tcp:host=localhost:port=7000:...`).
impl fmt::Display for GreetEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.options, self.inner)
    }
}

#[async_trait]
impl ClientEndpoint for GreetEndpoint {
    async fn connect(&self) -> io::Result<Connection> {
        // The inner error already names the inner endpoint; ours names `greet:`.
        let mut conn = self.inner.connect().await?;
        let line = format!("{}\n", self.text);
        conn.write_all(line.as_bytes())
            .await
            .map_err(|e| io_error(Operation::Connect, self, e))?;
        Ok(conn)
    }
}
// ANCHOR_END: endpoint

// ANCHOR: register
endpoints_core::register_client! {
    prefix: "greet",
    summary: "send a line after connecting with any client description",
    params: PARAMS,
    build: build,
}
// ANCHOR_END: register

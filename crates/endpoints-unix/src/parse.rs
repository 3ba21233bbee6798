//! Parsers for the `unix:` server and client descriptions.

use endpoints_core::params::{Args, Conflict, Param, ParamKind, Value};
use endpoints_core::{ClientEndpoint, Description, ParseError, ServerEndpoint};

use crate::address::UnixAddress;
use crate::client::UnixClientEndpoint;
use crate::server::{UnixServerConfig, UnixServerEndpoint};

/// Parameters of the `unix:` server: Twisted's `address`, `mode`, `backlog`, `lockfile`
/// (in that positional order), then `owner` and `group`.
pub static SERVER_PARAMS: &[Param] = &[
    Param::required("address", ParamKind::Path)
        .at(0)
        .help("socket path, or `@name` for a Linux abstract socket"),
    Param::optional("mode", ParamKind::Mode)
        .at(1)
        .default("666")
        .help("permission bits of the socket file, set before it exists"),
    Param::optional("backlog", ParamKind::UInt)
        .at(2)
        .default("1024")
        .help("accept queue length"),
    Param::optional("lockfile", ParamKind::Bool)
        .at(3)
        .default("1")
        .help("hold <address>.lock (flock) and take over a stale socket (one that refuses connections)"),
    Param::optional("owner", ParamKind::Text).help("user name or uid to own the socket file"),
    Param::optional("group", ParamKind::Text).help("group name or gid of the socket file"),
];

/// Parameters of the `unix:` client.
pub static CLIENT_PARAMS: &[Param] = &[
    Param::required("path", ParamKind::Path)
        .at(0)
        .help("socket path, or `@name` for a Linux abstract socket"),
    Param::optional("timeout", ParamKind::Duration)
        .default("30")
        .help("connect deadline in seconds (0: none)"),
    Param::optional("lockfile", ParamKind::Bool)
        .default("0")
        .help("1: connect only if a live server holds <path>.lock"),
    Param::optional("checkPID", ParamKind::Bool)
        .help("the same as `lockfile` (Twisted's documented name)"),
];

fn build_server(d: &Description) -> Result<Box<dyn ServerEndpoint>, ParseError> {
    let args = Args::parse(d, SERVER_PARAMS)?;
    let address_v = args.required("address")?;
    let address = UnixAddress::from_value(&address_v)?;
    let mut config = UnixServerConfig::new(address.clone());
    config.backlog = args.required("backlog")?.u32()?;
    let canonical = match &address {
        UnixAddress::Abstract(_) => {
            for name in ["mode", "lockfile", "owner", "group"] {
                if args.is_given(name)
                    && let Some(v) = args.get(name)
                {
                    return Err(
                        v.invalid("an abstract socket has no file: no mode, lock, owner or group")
                    );
                }
            }
            config.lockfile = false;
            Description::new("unix")
                .with("address", address.to_string())
                .with("backlog", config.backlog.to_string())
        }
        UnixAddress::Path(_) => {
            config.mode = args.required("mode")?.mode()?;
            config.lockfile = args.required("lockfile")?.flag()?;
            config.owner = args
                .get("owner")
                .map(|v| id(&v, "/etc/passwd"))
                .transpose()?;
            config.group = args
                .get("group")
                .map(|v| id(&v, "/etc/group"))
                .transpose()?;
            let mut c = args.canonical();
            c.set("mode", format!("{:o}", config.mode));
            c.set("lockfile", if config.lockfile { "1" } else { "0" });
            c
        }
    };
    Ok(Box::new(UnixServerEndpoint::new(config, canonical)))
}

/// A numeric id, or a name looked up in `table` (`/etc/passwd` or `/etc/group`).
fn id(v: &Value<'_>, table: &str) -> Result<u32, ParseError> {
    let text = v.as_str();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return v.u32();
    }
    let contents = std::fs::read_to_string(table)
        .map_err(|e| v.invalid(format_args!("cannot read {table}: {e}")))?;
    contents
        .lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let id = f.nth(1)?;
            (name == text).then(|| id.parse::<u32>().ok()).flatten()
        })
        .next()
        .ok_or_else(|| v.invalid(format_args!("no `{text}` in {table}")))
}

fn build_client(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    // Twisted: one positional field is the path and overrides `path=`; a second is an error.
    let args = Args::parse_mapped(d, CLIENT_PARAMS, &["path"], Conflict::PositionalWins)?;
    let address = UnixAddress::from_value(&args.required("path")?)?;
    let timeout = args.required("timeout")?.duration()?;
    let lockfile = args.required("lockfile")?;
    let mut check = lockfile.flag()?;
    if let Some(alias) = args.get("checkPID") {
        let by_alias = alias.flag()?;
        if args.is_given("lockfile") && by_alias != check {
            return Err(
                alias.invalid("`checkPID` and `lockfile` are the same setting and disagree")
            );
        }
        check = by_alias;
    }
    let mut canonical = Description::new("unix")
        .with("path", address.to_string())
        .with("timeout", timeout.as_secs_f64().to_string());
    canonical.set("lockfile", if check { "1" } else { "0" });
    let timeout = (!timeout.is_zero()).then_some(timeout);
    Ok(Box::new(UnixClientEndpoint::new(
        address, timeout, check, canonical,
    )))
}

endpoints_core::register_server! {
    prefix: "unix",
    summary: "listen on a unix socket (mode set before the file exists; flock-guarded)",
    params: SERVER_PARAMS,
    build: build_server,
}

endpoints_core::register_client! {
    prefix: "unix",
    summary: "connect to a unix socket",
    params: CLIENT_PARAMS,
    build: build_client,
}

//! Descriptions as clap arguments and serde strings (`--features clap,serde`).
#![cfg(all(feature = "clap", feature = "serde"))]

use clap::Parser;
use endpoints::{ClientDescription, ServerDescription};

#[derive(Parser, Debug)]
struct Cli {
    #[arg(long)]
    listen: ServerDescription,
    #[arg(long)]
    connect: Option<ClientDescription>,
}

#[test]
fn clap_validates_while_parsing_arguments() {
    let ok = Cli::try_parse_from(["app", "--listen", "tcp:8080", "--connect", "tcp:db:5432"])
        .expect("valid");
    assert_eq!(
        ok.listen.canonical(),
        "tcp:port=8080:interface=:backlog=1024:reuseport=0:nodelay=0"
    );
    assert_eq!(ok.connect.expect("given").as_str(), "tcp:db:5432");

    let err = Cli::try_parse_from(["app", "--listen", "tcp:prot=80"]).expect_err("typo");
    let text = err.to_string();
    assert!(
        text.contains("invalid value 'tcp:prot=80' for '--listen <LISTEN>'"),
        "{text}"
    );
    assert!(
        text.contains(
            "unknown parameter `prot` for `tcp`; did you mean `port`?\n  tcp:prot=80\n      ^^^^"
        ),
        "{text}"
    );

    let err = Cli::try_parse_from([
        "app",
        "--listen",
        "tcp:8080",
        "--connect",
        "systemd:domain=INET:index=0",
    ])
    .expect_err("server-only type");
    assert!(
        err.to_string().contains("is a server endpoint type"),
        "{err}"
    );
}

#[derive(serde::Deserialize, serde::Serialize, Debug)]
struct Config {
    listen: ServerDescription,
    upstream: ClientDescription,
}

#[test]
fn serde_reads_and_writes_strings() {
    let cfg: Config =
        toml::from_str("listen = 'unix:/run/app.sock:mode=600'\nupstream = 'tcp:db:5432'\n")
            .expect("valid config");
    assert_eq!(cfg.listen.as_str(), "unix:/run/app.sock:mode=600");
    let back = toml::to_string(&cfg).expect("serialize");
    assert_eq!(
        back,
        "listen = \"unix:/run/app.sock:mode=600\"\nupstream = \"tcp:db:5432\"\n"
    );

    let err = toml::from_str::<Config>("listen = 'tcp:70000'\nupstream = 'tcp:db:5432'\n")
        .expect_err("bad port");
    assert!(
        err.to_string().contains("port `70000` is above 65535"),
        "{err}"
    );
}

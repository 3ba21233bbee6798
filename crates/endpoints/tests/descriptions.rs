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

/// issue 27 item 5: the description types carry a type policy: clap checks it while parsing
/// arguments, serde inside `with_policy`, and `build()` applies it again.
#[cfg(feature = "exec")]
mod type_policy {
    use clap::Parser;
    use endpoints::registry::{TypePolicy, with_policy};
    use endpoints::{ClientDescription, ErrorKind};

    #[derive(Parser, Debug)]
    struct Cli {
        #[arg(long, value_parser = ClientDescription::value_parser_with(TypePolicy::deny(["exec"])))]
        connect: ClientDescription,
    }

    #[test]
    fn clap_refuses_a_denied_type_even_nested() {
        assert!(Cli::try_parse_from(["app", "--connect", "tcp:db:5432"]).is_ok());
        let err = Cli::try_parse_from([
            "app",
            "--connect",
            r"tls:host=db:port=5432:endpoint=exec\:cat",
        ])
        .expect_err("exec refused");
        let text = err.to_string();
        assert!(text.contains("`exec` is not allowed"), "{text}");
        assert!(text.contains("in `endpoint=`"), "{text}");
    }

    #[derive(serde::Deserialize, Debug)]
    struct Config {
        upstream: ClientDescription,
    }

    #[test]
    fn serde_inside_with_policy_refuses_it_and_the_description_keeps_it() {
        let policy = TypePolicy::deny(["exec"]);
        let err = with_policy(&policy, || {
            toml::from_str::<Config>("upstream = 'haproxy:exec:cat'\n")
        })
        .expect_err("refused");
        assert!(err.to_string().contains("`exec` is not allowed"), "{err}");
        // Outside the scope, the same text is fine.
        let cfg: Config = toml::from_str("upstream = 'haproxy:exec:cat'\n").expect("no policy");
        assert!(cfg.upstream.policy().is_any());

        let d = ClientDescription::parse_with("tcp:db:5432", &policy).expect("tcp allowed");
        assert_eq!(d.policy(), &policy);
        assert!(d.build().is_ok());
        let e = ClientDescription::parse_with("exec:cat", &policy).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::NotAllowed);
    }
}

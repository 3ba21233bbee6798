//! issue 18 item 6: `--connect localhost:7000` suggests `tcp:localhost:7000` while clap reads
//! the arguments (`--features clap`).
#![cfg(all(feature = "clap", feature = "tcp"))]

use clap::Parser;
use endpoints::ClientDescription;

#[derive(Parser, Debug)]
struct Cli {
    #[arg(long)]
    connect: ClientDescription,
}

#[test]
fn a_host_and_port_without_a_type_suggests_tcp() {
    let err = Cli::try_parse_from(["app", "--connect", "localhost:7000"]).expect_err("no type");
    let text = err.to_string();
    assert!(
        text.contains(
            "`localhost:7000` is a host and port without an endpoint type: name the type; did \
             you mean `tcp:localhost:7000`?\n  localhost:7000\n  ^^^^^^^^^^^^^^"
        ),
        "{text}"
    );
    let ok = Cli::try_parse_from(["app", "--connect", "tcp:localhost:7000"]).expect("valid");
    assert_eq!(ok.connect.as_str(), "tcp:localhost:7000");
}

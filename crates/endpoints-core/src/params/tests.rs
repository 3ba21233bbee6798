//! Tests of declared parameters, argument checking, typed values and suggestions.

mod args {
    use super::super::*;
    use crate::description::Description;
    use crate::error::{ErrorKind, ParseError};
    use std::time::Duration;

    static P: &[Param] = &[
        Param::required("port", ParamKind::Port).at(0).help("port"),
        Param::optional("interface", ParamKind::Host)
            .at(1)
            .default("")
            .help("address"),
        Param::optional("backlog", ParamKind::UInt)
            .at(2)
            .default("1024")
            .help("queue"),
        Param::optional("timeout", ParamKind::Duration).help("seconds"),
        Param::optional("mode", ParamKind::Mode).help("mode"),
        Param::optional("flag", ParamKind::Bool).help("flag"),
    ];

    fn parse(s: &str) -> Result<Description, ParseError> {
        s.parse()
    }

    #[test]
    fn positional_and_keyword() -> Result<(), ParseError> {
        let d = parse("t:80:127.0.0.1:backlog=7")?;
        let a = Args::parse(&d, P)?;
        assert_eq!(a.required("port")?.port()?, 80);
        assert_eq!(a.get("interface").map(|v| v.as_str()), Some("127.0.0.1"));
        assert_eq!(a.get("backlog").map(|v| v.u32()).transpose()?, Some(7));
        assert_eq!(
            a.canonical().to_string(),
            "t:port=80:interface=127.0.0.1:backlog=7"
        );
        Ok(())
    }

    #[test]
    fn defaults_fill_in() -> Result<(), ParseError> {
        let d = parse("T:port=1")?;
        let a = Args::parse(&d, P)?;
        let b = a.get("backlog").expect("default");
        assert!(b.is_default());
        assert_eq!(b.u32()?, 1024);
        assert!(a.get("timeout").is_none());
        assert_eq!(
            a.canonical().to_string(),
            "t:port=1:interface=:backlog=1024"
        );
        Ok(())
    }

    #[test]
    fn unknown_parameter_suggests() -> Result<(), ParseError> {
        let d = parse("t:prot=80")?;
        let e = Args::parse(&d, P).expect_err("unknown");
        assert_eq!(e.kind(), ErrorKind::UnknownParameter);
        assert_eq!(e.span(), 2..6);
        assert_eq!(e.suggestion(), Some("port"));
        assert_eq!(e.parameter(), Some("prot"));
        let d = parse("t:80:zzzzzz=1")?;
        let e = Args::parse(&d, P).expect_err("unknown");
        assert!(e.message().contains("it takes: port, interface"), "{e}");
        Ok(())
    }

    #[test]
    fn duplicate_positional_and_keyword() -> Result<(), ParseError> {
        let d = parse("t:80:port=81")?;
        let e = Args::parse(&d, P).expect_err("dup");
        assert_eq!(e.kind(), ErrorKind::Duplicate);
        assert_eq!(e.span(), 5..12);
        Ok(())
    }

    #[test]
    fn unescaped_ipv6_gets_a_bracket_suggestion() -> Result<(), ParseError> {
        let d = parse("t:443:interface=::1")?;
        let e = Args::parse(&d, P).expect_err("split address");
        assert_eq!(e.kind(), ErrorKind::Duplicate);
        assert_eq!(e.suggestion(), Some("t:443:interface=[::1]"));
        assert_eq!(e.span(), 16..19);
        assert_eq!(
            e.message(),
            "`::1` is an IPv6 address split at its colons (`:` separates fields): write it in \
             brackets, `[::1]`, or escape its colons; did you mean `t:443:interface=[::1]`?"
        );
        let d = parse("t:443:interface=fe80::1:2:3")?;
        let e = Args::parse(&d, P).expect_err("split address");
        assert_eq!(e.suggestion(), Some("t:443:interface=[fe80::1:2:3]"));
        Ok(())
    }

    #[test]
    fn too_many_positionals() -> Result<(), ParseError> {
        let d = parse("t:80:1:2:3")?;
        let e = Args::parse(&d, P).expect_err("too many");
        assert_eq!(e.kind(), ErrorKind::UnknownParameter);
        assert_eq!(e.span(), 9..10);
        Ok(())
    }

    #[test]
    fn missing_required() -> Result<(), ParseError> {
        let d = parse("t")?;
        let e = Args::parse(&d, P).expect_err("missing");
        assert_eq!(e.kind(), ErrorKind::MissingParameter);
        assert_eq!(e.parameter(), Some("port"));
        Ok(())
    }

    #[test]
    fn typed_values() -> Result<(), ParseError> {
        let d = parse("t:70000:timeout=7.5:mode=0o640:flag=2")?;
        let a = Args::parse(&d, P)?;
        let e = a.required("port")?.port().expect_err("range");
        assert_eq!((e.kind(), e.span()), (ErrorKind::InvalidValue, 2..7));
        assert_eq!(
            a.get("timeout").map(|v| v.duration()).transpose()?,
            Some(Duration::from_millis(7500))
        );
        assert_eq!(a.get("mode").map(|v| v.mode()).transpose()?, Some(0o640));
        assert_eq!(a.get("flag").map(|v| v.flag()).transpose()?, Some(true));
        for bad in ["-1", "+80", " 80", "8_0", "", "1e3", "٣"] {
            let d = parse(&format!("t:port={bad}"))?;
            let a = Args::parse(&d, P)?;
            assert!(a.required("port")?.port().is_err(), "{bad:?} accepted");
        }
        for bad in ["-1", "x", "1.2.3", ".", "inf", "NaN", "1e9", "99999999"] {
            let d = parse(&format!("t:1:timeout={bad}"))?;
            let a = Args::parse(&d, P)?;
            assert!(
                a.get("timeout").expect("given").duration().is_err(),
                "{bad:?} accepted"
            );
        }
        for (ok, ms) in [
            ("250ms", 250),
            ("2s", 2000),
            ("1m", 60_000),
            (".5", 500),
            ("0", 0),
        ] {
            let d = parse(&format!("t:1:timeout={ok}"))?;
            let a = Args::parse(&d, P)?;
            assert_eq!(
                a.get("timeout").expect("given").duration()?,
                Duration::from_millis(ms)
            );
        }
        for bad in ["9", "0o", "77777", "rw"] {
            let d = parse(&format!("t:1:mode={bad}"))?;
            let a = Args::parse(&d, P)?;
            assert!(
                a.get("mode").expect("given").mode().is_err(),
                "{bad:?} accepted"
            );
        }
        Ok(())
    }

    #[test]
    fn closest_handles_transpositions_and_case() {
        assert_eq!(closest("prot", ["port", "interface"]), Some("port"));
        assert_eq!(closest("BINDADDRESS", ["bindAddress"]), Some("bindAddress"));
        assert_eq!(closest("xyz", ["port"]), None);
    }

    /// Issue 23 item 6: `caCerts=` on an `ssl:` client suggests `caCertsDir=` (three letters
    /// more: too far for a typo, but the name it starts).
    #[test]
    fn closest_also_finds_the_name_a_word_starts() {
        let ssl = [
            "host",
            "port",
            "certKey",
            "privateKey",
            "caCertsDir",
            "hostname",
        ];
        assert_eq!(closest("caCerts", ssl), Some("caCertsDir"));
        assert_eq!(closest("cacerts", ssl), Some("caCertsDir"));
        // The shortest name that it starts, and only for words of four letters or more.
        assert_eq!(closest("cert", ["certificate", "certKey"]), Some("certKey"));
        assert_eq!(closest("ca", ["caCertsDir"]), None);
        // A close typo still wins over a longer name.
        assert_eq!(closest("hots", ssl), Some("host"));
    }
}

mod split {
    use super::super::*;
    use crate::description::Description;
    use crate::error::{ErrorKind, ParseError};

    static CLIENT: &[Param] = &[
        Param::required("host", ParamKind::Host).at(0).help("host"),
        Param::required("port", ParamKind::Port).at(1).help("port"),
    ];

    #[test]
    fn positional_address_split_at_its_colons() -> Result<(), ParseError> {
        let d: Description = "tcp:::1:7000".parse()?;
        let e = Args::parse_mapped(&d, CLIENT, &["host", "port"], Conflict::PositionalWins)
            .expect_err("four positional fields");
        assert_eq!(e.kind(), ErrorKind::UnknownParameter);
        assert_eq!(e.span(), 4..7);
        assert_eq!(e.suggestion(), Some("tcp:[::1]:7000"));
        Ok(())
    }

    #[test]
    fn value_errors_inside_a_split_address_explain_it() -> Result<(), ParseError> {
        let d: Description = "tcp:host=::1:port=7000".parse()?;
        let args = Args::parse_mapped(&d, CLIENT, &["host", "port"], Conflict::PositionalWins)?;
        let e = args.required("host")?.invalid("the host is empty");
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert_eq!(e.span(), 9..12);
        assert_eq!(e.parameter(), Some("host"));
        assert_eq!(e.suggestion(), Some("tcp:host=[::1]:port=7000"));
        // A value outside the address keeps its own message.
        let d: Description = "tcp:[::1]:7000".parse()?;
        let args = Args::parse_mapped(&d, CLIENT, &["host", "port"], Conflict::PositionalWins)?;
        let e = args.required("port")?.invalid("no");
        assert_eq!(e.message(), "invalid `port` for `tcp`: no");
        Ok(())
    }

    #[test]
    fn list_values_and_cidrs_are_found() -> Result<(), ParseError> {
        let d: Description = "haproxy:trusted=10.0.0.0/8,::1:tcp:7000".parse()?;
        let found = SplitAddress::find(&d);
        assert_eq!(found[0].address(), "::1");
        assert_eq!(found[0].span(), 27..30);
        assert_eq!(
            found[0].fixed_input(&d).as_deref(),
            Some("haproxy:trusted=[10.0.0.0/8,::1]:tcp:7000")
        );
        let d: Description = "x:trusted=fe80::/10".parse()?;
        assert_eq!(SplitAddress::find(&d)[0].address(), "fe80::/10");
        let d: Description = "tcp:80:1:2".parse()?;
        assert!(SplitAddress::find(&d).is_empty());
        Ok(())
    }
}

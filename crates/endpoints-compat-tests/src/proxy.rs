//! PROXY protocol vectors (`proxy-vectors.jsonl`), against `endpoints::proxy::parse`.

use endpoints::Address;
use endpoints::proxy::{DEFAULT_V2_MAX, Progress, parse};
use serde_json::Value;

use crate::{Differences, Verdict};

fn bytes(v: &Value) -> Option<Vec<u8>> {
    let hex = v["hex"].as_str()?;
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// A vector address (`{"type": "IPv4Address", "host", "port"}` or `UNIXAddress`), as ours.
fn address(v: &Value) -> Option<Address> {
    match v["type"].as_str()? {
        "IPv4Address" | "IPv6Address" => {
            let ip: std::net::IpAddr = v["host"].as_str()?.parse().ok()?;
            Some(Address::Ip((ip, v["port"].as_u64()? as u16).into()))
        }
        "UNIXAddress" => Some(Address::Unix(v["name"].as_str()?.into())),
        _ => None,
    }
}

fn same(ours: Option<&Address>, want: &Value) -> bool {
    match (ours, want.is_null()) {
        (None, true) => true,
        (Some(a), false) => address(want).as_ref() == Some(a),
        _ => false,
    }
}

pub(crate) fn judge(v: &Value) -> Verdict {
    match v["mode"].as_str() {
        Some("parse") => judge_parse(v),
        Some("feed") => judge_feed(v),
        Some("wrapper") => judge_wrapper(v),
        other => Verdict::Fail(format!("unknown PROXY vector mode {other:?}")),
    }
}

/// Our outcome for a buffer, as a deviation entry names it.
fn outcome(result: &Result<Progress, impl std::fmt::Display>) -> String {
    match result {
        Ok(Progress::Done(..)) => "complete".to_owned(),
        Ok(Progress::NeedMore) => "needs more bytes".to_owned(),
        Err(_) => "refused".to_owned(),
    }
}

fn shown(a: Option<&Address>) -> String {
    a.map_or("none".to_owned(), |a| format!("{a:?}"))
}

fn wanted(v: &Value) -> String {
    address(v).map_or_else(
        || {
            if v.is_null() {
                "none".to_owned()
            } else {
                v.to_string()
            }
        },
        |a| format!("{a:?}"),
    )
}

fn judge_parse(v: &Value) -> Verdict {
    let Some(mut input) = bytes(&v["input"]) else {
        return Verdict::Fail("bad hex".into());
    };
    // Twisted's v1 parser is given the line without its CRLF.
    if v["version"].as_i64() == Some(1) && !input.ends_with(b"\r\n") {
        input.extend_from_slice(b"\r\n");
    }
    let result = parse(&input, DEFAULT_V2_MAX);
    // Twisted's parse() is given a whole header: "needs more bytes" is never a match,
    // neither for a header Twisted accepts nor for one it refuses.
    let context = match &result {
        Err(e) => format!("we refuse it: {e}"),
        _ => String::new(),
    };
    if v.get("error").is_some() {
        return match result {
            Err(_) => Verdict::Pass,
            other => Differences::one("result", outcome(&other), "refused", context),
        };
    }
    match result {
        Ok(Progress::Done(h, _)) => {
            let mut d = Differences::default();
            if !same(h.source.as_ref(), &v["expect"]["source"]) {
                d.add(
                    "source",
                    shown(h.source.as_ref()),
                    wanted(&v["expect"]["source"]),
                );
            }
            if !same(h.destination.as_ref(), &v["expect"]["destination"]) {
                d.add(
                    "destination",
                    shown(h.destination.as_ref()),
                    wanted(&v["expect"]["destination"]),
                );
            }
            d.verdict()
        }
        other => Differences::one("result", outcome(&other), "complete", context),
    }
}

fn judge_feed(v: &Value) -> Verdict {
    let (Some(chunks), Some(steps)) = (v["chunks"].as_array(), v["steps"].as_array()) else {
        return Verdict::Fail("malformed feed vector".into());
    };
    if chunks.len() != steps.len() {
        return Verdict::Fail(format!(
            "malformed feed vector: {} chunks, {} steps",
            chunks.len(),
            steps.len()
        ));
    }
    let mut buf = Vec::new();
    for (i, (chunk, step)) in chunks.iter().zip(steps).enumerate() {
        let Some(b) = bytes(chunk) else {
            return Verdict::Fail("bad hex".into());
        };
        buf.extend(b);
        let result = parse(&buf, DEFAULT_V2_MAX);
        let field = format!("step {i}");
        if step.get("error").is_some_and(|e| !e.is_null()) {
            return match result {
                Err(_) => Verdict::Pass,
                other => Differences::one(&field, outcome(&other), "refused", ""),
            };
        }
        match (step["complete"].as_bool(), result) {
            (Some(false), Ok(Progress::NeedMore)) => {}
            (Some(true), Ok(Progress::Done(h, n))) => {
                let mut d = Differences::default();
                if !same(h.source.as_ref(), &step["source"]) {
                    d.add(
                        format!("{field} source"),
                        shown(h.source.as_ref()),
                        wanted(&step["source"]),
                    );
                }
                if !same(h.destination.as_ref(), &step["destination"]) {
                    d.add(
                        format!("{field} destination"),
                        shown(h.destination.as_ref()),
                        wanted(&step["destination"]),
                    );
                }
                let rest = &buf[n..];
                let want_rest = bytes(&step["remaining"]).unwrap_or_default();
                if rest != want_rest.as_slice() {
                    d.add(
                        format!("{field} remaining"),
                        format!("{rest:02x?}"),
                        format!("{want_rest:02x?}"),
                    );
                }
                // Twisted's last step completes the header: later chunks are not judged.
                return d.verdict();
            }
            (want, got) => {
                let twisted = match want {
                    Some(true) => "complete",
                    Some(false) => "needs more bytes",
                    None => return Verdict::Fail(format!("malformed step {i}")),
                };
                return Differences::one(&field, outcome(&got), twisted, "");
            }
        }
    }
    Verdict::Pass
}

fn judge_wrapper(v: &Value) -> Verdict {
    let Some(chunks) = v["chunks"].as_array() else {
        return Verdict::Fail("malformed wrapper vector".into());
    };
    let mut buf = Vec::new();
    for c in chunks {
        match bytes(c) {
            Some(b) => buf.extend(b),
            None => return Verdict::Fail("bad hex".into()),
        }
    }
    let expect = &v["expect"];
    let Some(connected) = expect["connected"].as_bool() else {
        return Verdict::Fail("malformed wrapper vector: no `connected`".into());
    };
    let result = parse(&buf, DEFAULT_V2_MAX);
    match (connected, result) {
        // Twisted drops the connection: we must refuse the bytes, not wait for more.
        (false, Err(_)) => Verdict::Pass,
        (false, other) => Differences::one("result", outcome(&other), "refused", ""),
        (true, Ok(Progress::Done(h, n))) => {
            let mut d = Differences::default();
            let app = bytes(&expect["appData"]).unwrap_or_default();
            if buf[n..] != app[..] {
                d.add(
                    "application data",
                    format!("{:02x?}", &buf[n..]),
                    format!("{app:02x?}"),
                );
            }
            // The peer is the header's source, or the real peer when the header names none.
            let real_peer = address(&v["transport"]["peer"]);
            let peer = h.source.clone().or(real_peer);
            let want_peer = address(&expect["getPeer"]);
            if want_peer.is_some() && peer != want_peer {
                d.add("peer", shown(peer.as_ref()), shown(want_peer.as_ref()));
            }
            d.verdict()
        }
        (true, other) => Differences::one("result", outcome(&other), "complete", ""),
    }
}

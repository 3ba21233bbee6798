//! PROXY protocol vectors (`proxy-vectors.jsonl`), against `endpoints::proxy::parse`.

use endpoints::Address;
use endpoints::proxy::{DEFAULT_V2_MAX, Progress, parse};
use serde_json::Value;

use crate::Verdict;

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

fn judge_parse(v: &Value) -> Verdict {
    let Some(mut input) = bytes(&v["input"]) else {
        return Verdict::Fail("bad hex".into());
    };
    // Twisted's v1 parser is given the line without its CRLF.
    if v["version"].as_i64() == Some(1) && !input.ends_with(b"\r\n") {
        input.extend_from_slice(b"\r\n");
    }
    let result = parse(&input, DEFAULT_V2_MAX);
    if v.get("error").is_some() {
        return match result {
            Err(_) | Ok(Progress::NeedMore) => Verdict::Pass,
            Ok(Progress::Done(h, _)) => Verdict::Fail(format!(
                "Twisted refuses it; we accept {:?} -> {:?}",
                h.source, h.destination
            )),
        };
    }
    match result {
        Ok(Progress::Done(h, _)) => {
            if same(h.source.as_ref(), &v["expect"]["source"])
                && same(h.destination.as_ref(), &v["expect"]["destination"])
            {
                Verdict::Pass
            } else {
                Verdict::Fail(format!(
                    "addresses {:?} -> {:?}, Twisted {} -> {}",
                    h.source, h.destination, v["expect"]["source"], v["expect"]["destination"]
                ))
            }
        }
        Ok(Progress::NeedMore) => Verdict::Fail("we still wait for more bytes".into()),
        Err(e) => Verdict::Fail(format!("we refuse it: {e}")),
    }
}

fn judge_feed(v: &Value) -> Verdict {
    let (Some(chunks), Some(steps)) = (v["chunks"].as_array(), v["steps"].as_array()) else {
        return Verdict::Fail("malformed feed vector".into());
    };
    let mut buf = Vec::new();
    for (i, (chunk, step)) in chunks.iter().zip(steps).enumerate() {
        let Some(b) = bytes(chunk) else {
            return Verdict::Fail("bad hex".into());
        };
        buf.extend(b);
        let result = parse(&buf, DEFAULT_V2_MAX);
        if step.get("error").is_some_and(|e| !e.is_null()) {
            return match result {
                Err(_) => Verdict::Pass,
                other => Verdict::Fail(format!("step {i}: Twisted refuses; we have {other:?}")),
            };
        }
        match (step["complete"].as_bool(), result) {
            (Some(false), Ok(Progress::NeedMore)) => {}
            (Some(true), Ok(Progress::Done(h, n))) => {
                let rest = &buf[n..];
                let want_rest = bytes(&step["remaining"]).unwrap_or_default();
                if !same(h.source.as_ref(), &step["source"])
                    || !same(h.destination.as_ref(), &step["destination"])
                {
                    return Verdict::Fail(format!(
                        "step {i}: addresses {:?} -> {:?}",
                        h.source, h.destination
                    ));
                }
                if rest != want_rest.as_slice() {
                    return Verdict::Fail(format!(
                        "step {i}: {} bytes after the header, Twisted {}",
                        rest.len(),
                        want_rest.len()
                    ));
                }
                return Verdict::Pass;
            }
            (want, got) => {
                return Verdict::Fail(format!("step {i}: Twisted complete={want:?}, we {got:?}"));
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
    let connected = expect["connected"].as_bool().unwrap_or(false);
    match (connected, parse(&buf, DEFAULT_V2_MAX)) {
        (false, Err(_) | Ok(Progress::NeedMore)) => Verdict::Pass,
        (false, Ok(Progress::Done(..))) => {
            Verdict::Fail("Twisted drops the connection; we accept it".into())
        }
        (true, Ok(Progress::Done(h, n))) => {
            let app = bytes(&expect["appData"]).unwrap_or_default();
            if buf[n..] != app[..] {
                return Verdict::Fail(format!(
                    "application data {:?}, Twisted {:?}",
                    &buf[n..],
                    app
                ));
            }
            // The peer is the header's source, or the real peer when the header names none.
            let real_peer = address(&v["transport"]["peer"]);
            let peer = h.source.clone().or(real_peer);
            let want_peer = address(&expect["getPeer"]);
            if want_peer.is_some() && peer != want_peer {
                return Verdict::Fail(format!("peer {peer:?}, Twisted {want_peer:?}"));
            }
            Verdict::Pass
        }
        (true, other) => Verdict::Fail(format!("Twisted connects; we have {other:?}")),
    }
}

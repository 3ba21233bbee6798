//! `endpoints run` against `endpoints relay` (issue 32 item 5): the same relay loop and copy
//! path, so the same throughput; `run` also has its metrics recorder installed
//! (`metrics = ...`), whose cost per connection is a few counter updates.

use crate::Outcome;
use crate::relay::{Relay, throughput};

/// One row: bytes over one connection through a `run` tunnel vs through `relay`,
/// interleaved, medians.
pub(crate) async fn figures(quick: bool) -> Outcome<()> {
    let bytes: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let runs = if quick { 3 } else { 5 };
    let (mut relay, mut run) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        relay.push(throughput(Relay::Endpoints, bytes).await?.gbits);
        run.push(throughput(Relay::EndpointsRun, bytes).await?.gbits);
    }
    let mb = bytes >> 20;
    crate::row(
        &format!(
            "relay, {mb} MiB over one connection: an `endpoints run` tunnel (metrics recorder on) vs `endpoints relay` (Gbit/s)"
        ),
        crate::median(relay),
        crate::median(run),
        "≥ 0.95",
    )
}

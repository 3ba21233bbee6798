//! `endpoints run FILE`: the named tunnels of a TOML file (see [`crate::config`]), each served
//! by `relay`'s own loop ([`crate::relay::serve`]), one handover for all of them.
//!
//! The whole file is checked before anything listens; `--check` stops there and prints each
//! tunnel's canonical form. On `SIGHUP` the successor (the same binary, the same arguments)
//! reads the file again: a listener whose description did not change is adopted (by its
//! description's key, as for `relay`), a new tunnel listens, a removed or changed one is
//! closed in the successor, and this process drains every connection it has. A file that no
//! longer passes the check makes the successor exit (status 2) before it is ready: this
//! process logs the failed handover and serves on.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Does};
use crate::flags::Parsed;
use crate::handover::Handover;
use crate::relay::{self, DEFAULT_DRAIN, DEFAULT_LINGER, Settings, Target, Tunnel};
use crate::{Fail, cli};

pub(crate) async fn run(a: cli::RunArgs) -> Result<ExitCode, Fail> {
    let policy = crate::type_policy();
    let cfg = match config::load(&a.file, &policy) {
        Ok(c) => c,
        Err(e) => {
            // In the log too: under a handover this is what says why the reload failed.
            return Err(Fail::Usage(format!(
                "endpoints run: {} is not usable; nothing was started:\n{e}",
                a.file
            )));
        }
    };
    if a.check {
        for t in &cfg.tunnels {
            let does = match (&t.does, &t.connect_canonical) {
                (Does::Connect(_), Some(c)) => format!("connect = {c}"),
                (Does::Connect(c), None) => format!("connect = {c}"),
                (Does::Echo, _) => "echo".to_owned(),
            };
            out!(
                "tunnel {}: listen = {} ; {does}",
                t.name,
                t.listen_canonical
            );
        }
        if let Some((_, m)) = &cfg.metrics {
            out!("metrics: listen = {m}");
        }
        err!("{}: {} tunnel(s), ok", a.file, cfg.tunnels.len());
        return Ok(ExitCode::SUCCESS);
    }
    let h = a.handover;
    let mut handover = Handover::from_flags(
        &Parsed::new(Vec::new())
            .value("--pid-file", h.pid_file.or(cfg.pid_file.clone()))
            .value("--ready-timeout", h.ready_timeout)
            .value("--handover-exec", h.handover_exec)
            .switch("--fd-store", h.fd_store),
    )?;
    if cfg.metrics.is_some() {
        crate::exporter::install()?;
    }
    // Every tunnel's series exist (at zero) before the first scrape can come.
    for t in &cfg.tunnels {
        crate::exporter::tunnel_started(&t.name);
    }
    crate::log::hold();
    // Every listener first (adopting what a predecessor handed over), then the inherited
    // descriptors nothing adopted are closed: never between two tunnels, or a later tunnel's
    // inherited listener would be closed before it is adopted.
    let mut tunnels = Vec::new();
    let mut fail = None;
    for t in &cfg.tunnels {
        // Inside the tunnel's scope: the library's listeners and wrappers label what they
        // record (handshake failures, refusals) with its name.
        let scoped = endpoints::util::metrics::scope(Arc::from(t.name.as_str()), async {
            listen(&t.listen, &t.policy).await
        });
        match scoped.await {
            Ok(l) => {
                err!("tunnel {}: listening on {l}", t.name);
                tunnels.push((t, l));
            }
            Err(e) => {
                fail = Some(format!("tunnel {}: {e}", t.name));
                break;
            }
        }
    }
    let metrics_listener = match (&cfg.metrics, &fail) {
        (Some((m, _)), None) => match listen(m, &policy).await {
            Ok(l) => {
                err!("metrics: listening on {l} (GET /metrics)");
                Some(l)
            }
            Err(e) => {
                fail = Some(format!("metrics: {e}"));
                None
            }
        },
        _ => None,
    };
    crate::handover::close_stale();
    if let Some(m) = fail {
        crate::log::release();
        return Err(Fail::Run(format!("{m}; nothing is served")));
    }
    let mut serving = Vec::new();
    for (t, listener) in tunnels {
        let target = match &t.does {
            Does::Connect(c) => {
                let built = endpoints::client_with(c, &t.policy)
                    .map_err(|e| Fail::Usage(format!("tunnel {}: connect: {e}", t.name)))?;
                Target::Connect(Arc::from(built))
            }
            Does::Echo => Target::Echo,
        };
        let max = relay::connection_limit(
            t.max_connections,
            &format!("tunnel {}", t.name),
            "max-connections",
        );
        let drain_for = t.drain_timeout.unwrap_or(DEFAULT_DRAIN);
        serving.push(Tunnel {
            name: Some(t.name.clone()),
            listener,
            target,
            settings: Settings {
                linger: t.linger.unwrap_or(DEFAULT_LINGER),
                idle: t.idle_timeout,
                half_close: t.half_close,
            },
            max,
            drain_for,
            drain_named: format!(
                "tunnel {}'s drain deadline (drain-timeout = {})",
                t.name,
                secs(drain_for)
            ),
        });
    }
    crate::log::release();
    handover.listening()?;
    if let Some(l) = metrics_listener {
        tokio::spawn(crate::exporter::serve(l));
    }
    relay::serve(serving, &mut handover).await
}

/// Build and listen (adopting an inherited listener of the same description).
async fn listen(
    text: &str,
    policy: &endpoints::registry::TypePolicy,
) -> Result<Box<dyn endpoints::Listener>, String> {
    let endpoint = endpoints::server_with(text, policy).map_err(|e| e.to_string())?;
    endpoint.listen().await.map_err(|e| e.to_string())
}

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

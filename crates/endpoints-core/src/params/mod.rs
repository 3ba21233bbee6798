//! Declared parameters and the extraction helper plugin parsers use.
//!
//! A plugin declares its parameters once, as a `static` slice of [`Param`]. The same
//! declaration drives parsing ([`Args`]), the registry listing (`endpoints types`), the
//! canonical form of a built endpoint ([`Args::canonical`]) and the docs.
//!
//! ```
//! use endpoints_core::params::{Args, Param, ParamKind};
//! use endpoints_core::Description;
//!
//! static PARAMS: &[Param] = &[
//!     Param::required("port", ParamKind::Port).at(0).help("port to listen on"),
//!     Param::optional("backlog", ParamKind::UInt).at(1).default("1024").help("accept queue length"),
//! ];
//!
//! let d: Description = "demo:8080".parse()?;
//! let args = Args::parse(&d, PARAMS)?;
//! assert_eq!(args.required("port")?.port()?, 8080);
//! assert_eq!(args.get("backlog").map(|v| v.u32()).transpose()?, Some(1024));
//!
//! let e = Args::parse(&"demo:8080:prot=1".parse()?, PARAMS).unwrap_err();
//! assert_eq!(e.message(), "unknown parameter `prot` for `demo`; did you mean `port`?");
//! # Ok::<(), endpoints_core::ParseError>(())
//! ```
//!
//! The module is split by what it holds: the declarations ([`Param`], [`ParamKind`],
//! [`Conflict`]), the checking of a description against them ([`Args`]), the typed values
//! ([`Value`]) and the suggestions made when something is wrong ([`SplitAddress`],
//! [`misplaced_wrapper_option`], [`closest`]).

mod args;
mod declare;
mod redact;
mod suggest;
mod value;

pub use args::Args;
pub(crate) use args::watch_build;
pub use declare::{Conflict, Param, ParamKind, Secrecy};
pub use redact::{Redacted, redact};
pub use suggest::{SplitAddress, closest, misplaced_wrapper_option};
pub(crate) use suggest::{explain_build_error, secure_server_form};
pub use value::Value;

#[cfg(test)]
mod tests;

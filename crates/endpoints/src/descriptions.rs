//! [`ServerDescription`] and [`ClientDescription`]: descriptions checked when they are parsed
//! (by building them), for command-line arguments and config files, optionally under a
//! [`TypePolicy`] (which endpoint types they may use, at every nesting level).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use endpoints_core::registry::{TypePolicy, current_policy, with_policy};
use endpoints_core::{ClientEndpoint, ParseError, ServerEndpoint};

macro_rules! description_type {
    ($name:ident, $side:literal, $build:path, $endpoint:ty) => {
        #[doc = concat!("A ", $side, " description that builds: parsing it checks every parameter (files named by it are read), so a mistake is reported with its caret line while arguments or config are read.")]
        ///
        /// `Display` is the text as given. With feature `clap` it is a clap argument type, with
        /// feature `serde` it (de)serializes as a string.
        ///
        /// It keeps the endpoint it built ([`endpoint`](Self::endpoint)), so giving it to a
        /// service does not parse or read files again. Equality and hashing are by text.
        ///
        /// Types: [`parse_with`](Self::parse_with) refuses the endpoint types a [`TypePolicy`]
        /// refuses, at every nesting level (`exec` in a config file from someone else, even
        /// inside `tls:...:endpoint=`). `FromStr`, clap and serde apply the policy in force
        /// on the thread (`registry::with_policy`), so a config file deserialized inside
        /// `with_policy(&policy, || toml::from_str(text))` is checked; with clap, use
        /// `value_parser_with` (feature `clap`). The policy is kept: [`build`](Self::build)
        /// applies it again.
        #[derive(Clone)]
        pub struct $name {
            text: String,
            canonical: String,
            endpoint: Arc<$endpoint>,
            policy: TypePolicy,
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.text == other.text
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.text.hash(state);
            }
        }

        impl $name {
            /// The text as given.
            pub fn as_str(&self) -> &str {
                &self.text
            }

            /// The canonical form (every parameter spelled out).
            pub fn canonical(&self) -> &str {
                &self.canonical
            }

            /// Build the endpoint again (parsing the text and reading the files it names
            /// anew, e.g. after a certificate renewal), under the policy it was parsed with.
            pub fn build(&self) -> Result<Box<$endpoint>, ParseError> {
                let d = self.text.parse()?;
                with_policy(&self.policy, || $build(&d))
            }

            /// Parse `text` with `policy` in force (together with any in force on the
            /// thread): a type it refuses, at any level, is a
            /// [`NotAllowed`](endpoints_core::ErrorKind::NotAllowed) error naming it.
            pub fn parse_with(text: &str, policy: &TypePolicy) -> Result<Self, ParseError> {
                with_policy(policy, || text.parse())
            }

            /// The type policy it was checked against ([`TypePolicy::any`] if none).
            pub fn policy(&self) -> &TypePolicy {
                &self.policy
            }

            /// The endpoint built when this description was parsed (shared by clones).
            pub fn endpoint(&self) -> Arc<$endpoint> {
                self.endpoint.clone()
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            /// Parse and build, under the policy in force on the thread (none by default).
            fn from_str(s: &str) -> Result<Self, ParseError> {
                let endpoint = $build(&s.parse()?)?;
                Ok(Self {
                    text: s.to_owned(),
                    canonical: endpoint.to_string(),
                    endpoint: Arc::from(endpoint),
                    policy: current_policy(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.text)
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.text)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} endpoint description such as `tcp:8080`", $side)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Visitor)
            }
        }

        #[cfg(feature = "clap")]
        impl $name {
            /// A clap value parser that checks the description against `policy`:
            /// `#[arg(long, value_parser = ClientDescription::value_parser_with(TypePolicy::deny(["exec"])))]`.
            pub fn value_parser_with(policy: TypePolicy) -> clap::builder::ValueParser {
                clap::builder::ValueParser::new(move |s: &str| $name::parse_with(s, &policy))
            }
        }

        #[cfg(feature = "clap")]
        impl clap::builder::ValueParserFactory for $name {
            type Parser = clap::builder::ValueParser;
            fn value_parser() -> Self::Parser {
                clap::builder::ValueParser::new(|s: &str| s.parse::<$name>())
            }
        }
    };
}

description_type!(
    ServerDescription,
    "server",
    endpoints_core::registry::build_server,
    dyn ServerEndpoint
);
description_type!(
    ClientDescription,
    "client",
    endpoints_core::registry::build_client,
    dyn ClientEndpoint
);

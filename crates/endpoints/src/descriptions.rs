//! [`ServerDescription`] and [`ClientDescription`]: descriptions checked when they are parsed
//! (by building them), for command-line arguments and config files.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

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
        #[derive(Clone)]
        pub struct $name {
            text: String,
            canonical: String,
            endpoint: Arc<$endpoint>,
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
            /// anew, e.g. after a certificate renewal).
            pub fn build(&self) -> Result<Box<$endpoint>, ParseError> {
                $build(&self.text.parse()?)
            }

            /// The endpoint built when this description was parsed (shared by clones).
            pub fn endpoint(&self) -> Arc<$endpoint> {
                self.endpoint.clone()
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, ParseError> {
                let endpoint = $build(&s.parse()?)?;
                Ok(Self {
                    text: s.to_owned(),
                    canonical: endpoint.to_string(),
                    endpoint: Arc::from(endpoint),
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

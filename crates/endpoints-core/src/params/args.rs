//! Argument checking: a description checked against the declared parameters.

use std::cell::RefCell;

use super::suggest::{example_for, unknown_parameter};
use super::{Conflict, Param, ParamKind, SplitAddress, Value};
use crate::description::{Description, Field};
use crate::error::{ErrorKind, ParseError};

/// The parameters of one description, checked against the declared [`Param`]s: unknown
/// keys, too many positional fields and duplicates are rejected when it is built.
#[derive(Debug)]
pub struct Args<'a> {
    description: &'a Description,
    prefix: &'a str,
    params: &'static [Param],
    /// The chosen field for each declared parameter, index-aligned with `params`.
    given: Vec<Option<&'a Field>>,
    /// An IPv6 address split at its colons whose bracketed form parses: values that are part
    /// of it report it instead of their own error.
    split: Option<SplitAddress>,
}

impl<'a> Args<'a> {
    /// Check `description` against `params`, mapping positional fields by each parameter's
    /// declared position. A parameter given both positionally and by keyword is an error.
    pub fn parse(
        description: &'a Description,
        params: &'static [Param],
    ) -> Result<Self, ParseError> {
        Self::parse_mapped(
            description,
            params,
            &declared_positions(params),
            Conflict::Error,
        )
    }

    /// Like [`parse`](Self::parse), with the positional fields mapped to `positional` names
    /// (for types whose positional meaning depends on what else was given, like the `tcp:`
    /// client), and a choice of conflict rule.
    ///
    /// An IPv6 address written without brackets is split at its colons (`tcp:::1:7000` is the
    /// fields `tcp`, ``, ``, `1`, `7000`). When the description has such a run of fields and
    /// bracketing it makes the fields fit the declared parameters, an error in those fields
    /// says so, points at the address and suggests the bracketed text.
    pub fn parse_mapped(
        description: &'a Description,
        params: &'static [Param],
        positional: &[&'static str],
        conflict: Conflict,
    ) -> Result<Self, ParseError> {
        let rules = Rules {
            params,
            positional,
            conflict,
        };
        match Self::check(description, &rules) {
            Ok(mut args) => {
                args.split = rules.split_that_fits(description);
                Ok(args)
            }
            Err(e) => match rules.split_that_fits(description) {
                Some(split) => Err(explain_split(description, &split, &e)),
                None => Err(e),
            },
        }
    }

    /// [`parse_mapped`](Self::parse_mapped) without the IPv6 hint: the keyword fields, then
    /// the positional fields, then the required parameters.
    fn check<'d>(description: &'d Description, rules: &Rules<'_>) -> Result<Args<'d>, ParseError> {
        let prefix = description.prefix().unwrap_or("");
        let mut given: Vec<Option<&'d Field>> = vec![None; rules.params.len()];
        rules.take_keywords(description, prefix, &mut given)?;
        rules.take_positionals(description, prefix, &mut given)?;
        rules.require(description, prefix, &given)?;
        Ok(Args {
            description,
            prefix,
            params: rules.params,
            given,
            split: None,
        })
    }

    /// The description these arguments came from.
    pub fn description(&self) -> &'a Description {
        self.description
    }

    /// The value of `name` if given, else its declared default, else `None`.
    ///
    /// A `name` that is not declared is a bug in the plugin, never a panic: `get` returns
    /// `None`, and the registry build in progress (`registry::build_client`/`build_server`)
    /// fails with a [`PluginBug`](ErrorKind::PluginBug) error naming the plugin and `name`,
    /// whatever the plugin returned.
    pub fn get(&self, name: &str) -> Option<Value<'a>> {
        let i = self.index(name)?;
        let p = &self.params[i];
        match self.given[i] {
            Some(f) => Some(Value {
                text: f.value(),
                span: f.value_span(),
                param: p.name,
                prefix: self.prefix,
                description: self.description,
                from_default: false,
                split: self.split.clone().filter(|s| {
                    let fields = self.description.fields();
                    fields[s.first..=s.last].iter().any(|x| std::ptr::eq(x, f))
                }),
            }),
            None => p.default.map(|d| {
                let end = self.description.input().map_or(0, |s| s.len());
                Value {
                    text: d,
                    span: end..end,
                    param: p.name,
                    prefix: self.prefix,
                    description: self.description,
                    from_default: true,
                    split: None,
                }
            }),
        }
    }

    /// Whether `name` was given (not defaulted). An undeclared `name` is a plugin bug, as in
    /// [`get`](Self::get): `false`, and the build fails.
    pub fn is_given(&self, name: &str) -> bool {
        self.index(name).is_some_and(|i| self.given[i].is_some())
    }

    /// The value of a parameter that must be present (given or defaulted). An undeclared
    /// `name` is a [`PluginBug`](ErrorKind::PluginBug) error.
    pub fn required(&self, name: &str) -> Result<Value<'a>, ParseError> {
        if self.index(name).is_none() {
            return Err(undeclared_error(self.description, self.prefix, name, None));
        }
        self.get(name).ok_or_else(|| {
            let end = self.description.input().map_or(0, |s| s.len());
            self.description
                .error(
                    ErrorKind::MissingParameter,
                    end..end,
                    format!("`{}` needs `{name}`", self.prefix),
                )
                .with_parameter(name.to_owned())
        })
    }

    /// The canonical description: the prefix in lower case, then every declared parameter
    /// that has a value (given or default) as `name=value`, in declaration order.
    pub fn canonical(&self) -> Description {
        let mut d = Description::new(self.prefix.to_ascii_lowercase());
        for p in self.params {
            if let Some(v) = self.get(p.name) {
                d.push(Field::keyword(p.name, v.as_str()));
            }
        }
        d
    }

    /// The position of `name` in the declared parameters; `None` (recorded for the build in
    /// progress) when the plugin did not declare it.
    fn index(&self, name: &str) -> Option<usize> {
        let i = self.params.iter().position(|p| p.name == name);
        if i.is_none() {
            ASKED.with(|frames| {
                if let Some(frame @ None) = frames.borrow_mut().last_mut() {
                    *frame = Some(Undeclared {
                        description: self.description.clone(),
                        table: self.prefix.to_owned(),
                        name: name.to_owned(),
                    });
                }
            });
        }
        i
    }
}

/// A parameter a plugin asked [`Args`] for without declaring it.
struct Undeclared {
    description: Description,
    /// The prefix whose parameters were searched.
    table: String,
    name: String,
}

thread_local! {
    /// One entry per registry build in progress on this thread (innermost last): the first
    /// undeclared parameter its plugin asked for.
    static ASKED: RefCell<Vec<Option<Undeclared>>> = const { RefCell::new(Vec::new()) };
}

/// Run a plugin's `build` (registry only): if the plugin asked [`Args`] for a parameter it
/// did not declare, the result is a [`PluginBug`](ErrorKind::PluginBug) error naming
/// `plugin` (its prefix) and `crate_name`, whatever `build` returned.
pub(crate) fn watch_build<T>(
    plugin: &str,
    crate_name: &str,
    build: impl FnOnce() -> Result<T, ParseError>,
) -> Result<T, ParseError> {
    /// Pops this build's entry however `build` ends (errors and panics too).
    struct Frame;
    impl Drop for Frame {
        fn drop(&mut self) {
            ASKED.with(|frames| frames.borrow_mut().pop());
        }
    }
    ASKED.with(|frames| frames.borrow_mut().push(None));
    let frame = Frame;
    let result = build();
    let asked = ASKED.with(|frames| frames.borrow_mut().last_mut().and_then(Option::take));
    drop(frame);
    match asked {
        None => result,
        Some(u) => Err(undeclared_error(
            &u.description,
            &u.table,
            &u.name,
            Some((plugin, crate_name)),
        )),
    }
}

/// The error for a plugin that asked for `name`, not in the parameters of `table` (the
/// prefix they were checked for), in `description`; `plugin` is the plugin being built and
/// its crate, when known. It points at the prefix.
fn undeclared_error(
    description: &Description,
    table: &str,
    name: &str,
    plugin: Option<(&str, &str)>,
) -> ParseError {
    let span = description
        .prefix_field()
        .map_or(0..description.input().map_or(0, |s| s.len()), |f| f.span());
    let who = match plugin {
        Some((prefix, krate)) if prefix.eq_ignore_ascii_case(table) => {
            format!(
                "the `{prefix}` plugin (crate `{krate}`) asked for parameter `{name}`, which it does not declare"
            )
        }
        Some((prefix, krate)) => format!(
            "the `{prefix}` plugin (crate `{krate}`) asked for parameter `{name}`, which `{table}` does not declare"
        ),
        None => format!("a plugin asked for parameter `{name}`, which `{table}` does not declare"),
    };
    description
        .error(
            ErrorKind::PluginBug,
            span,
            format!("plugin bug: {who}; the description is not at fault: report this to the plugin's authors (declare `{name}` or stop asking for it)"),
        )
        .with_parameter(name.to_owned())
}

/// The positional names of `params`, by each parameter's declared position (`""` for a
/// position no parameter takes).
fn declared_positions(params: &'static [Param]) -> Vec<&'static str> {
    let mut order: Vec<&'static str> = Vec::new();
    for p in params {
        if let Some(i) = p.position {
            if order.len() <= i {
                order.resize(i + 1, "");
            }
            order[i] = p.name;
        }
    }
    order
}

/// The error for `error`, raised in fields that are an unbracketed IPv6 address: it points
/// at the address and suggests the bracketed text, keeping the parameter `error` named.
fn explain_split(
    description: &Description,
    split: &SplitAddress,
    error: &ParseError,
) -> ParseError {
    let hint = split.error(description, error.kind());
    match error.parameter() {
        Some(p) => hint.with_parameter(p.to_owned()),
        None => hint,
    }
}

/// How one description's fields map to the declared parameters.
struct Rules<'r> {
    params: &'static [Param],
    positional: &'r [&'static str],
    conflict: Conflict,
}

impl Rules<'_> {
    fn index_of(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// The first run of fields that is an unbracketed IPv6 address and that fits the declared
    /// parameters once bracketed.
    fn split_that_fits(&self, description: &Description) -> Option<SplitAddress> {
        SplitAddress::find(description)
            .into_iter()
            .find(|split| self.fits_bracketed(description, split))
    }

    /// Whether `description` with `split` bracketed fits the declared parameters, with
    /// numbers still numbers (`tcp:7000:::1` is port 7000 and `::1`, not `[7000::]` and `1`).
    fn fits_bracketed(&self, description: &Description, split: &SplitAddress) -> bool {
        let rejoined = split.rejoined(description);
        Args::check(&rejoined, self).is_ok_and(|args| {
            args.params
                .iter()
                .zip(&args.given)
                .all(|(p, f)| match (p.kind, f) {
                    (ParamKind::Port | ParamKind::UInt, Some(f)) => {
                        f.value().bytes().all(|b| b.is_ascii_digit())
                    }
                    _ => true,
                })
        })
    }

    /// Record every keyword field; an undeclared key is an error with a suggestion.
    fn take_keywords<'d>(
        &self,
        description: &'d Description,
        prefix: &str,
        given: &mut [Option<&'d Field>],
    ) -> Result<(), ParseError> {
        for field in description.fields() {
            let Some(key) = field.key() else { continue };
            match self.index_of(key) {
                Some(i) => given[i] = Some(field),
                None => {
                    return Err(unknown_parameter(
                        description,
                        prefix,
                        self.params,
                        field,
                        key,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Record every positional field under its mapped name; one too many is an error, and so
    /// is one also given by keyword under [`Conflict::Error`].
    fn take_positionals<'d>(
        &self,
        description: &'d Description,
        prefix: &str,
        given: &mut [Option<&'d Field>],
    ) -> Result<(), ParseError> {
        for (n, field) in description.positionals().enumerate() {
            let Some(name) = self.positional.get(n).copied().filter(|n| !n.is_empty()) else {
                return Err(self.unexpected_positional(description, prefix, field));
            };
            let Some(i) = self.index_of(name) else {
                continue;
            };
            match (given[i], self.conflict) {
                (Some(kw), Conflict::Error) if kw.key().is_some() => {
                    return Err(description
                        .error(
                            ErrorKind::Duplicate,
                            kw.span(),
                            format!(
                                "`{name}` is given twice: as positional field `{}` and as `{name}={}`",
                                field.value(),
                                kw.value()
                            ),
                        )
                        .with_parameter(name));
                }
                _ => given[i] = Some(field),
            }
        }
        Ok(())
    }

    /// The error for a positional field past the last one the type takes.
    fn unexpected_positional(
        &self,
        description: &Description,
        prefix: &str,
        field: &Field,
    ) -> ParseError {
        let names: Vec<&str> = self
            .positional
            .iter()
            .copied()
            .filter(|n| !n.is_empty())
            .collect();
        let takes = match names.len() {
            0 => "takes no positional fields".to_owned(),
            k => format!(
                "takes at most {k} positional field(s) here: {}",
                names.join(", ")
            ),
        };
        description.error(
            ErrorKind::UnknownParameter,
            field.span(),
            format!(
                "unexpected positional field `{}`: `{prefix}` {takes}",
                field.value()
            ),
        )
    }

    /// The first required parameter that was not given is an error saying how to give it.
    fn require(
        &self,
        description: &Description,
        prefix: &str,
        given: &[Option<&Field>],
    ) -> Result<(), ParseError> {
        let Some(p) = self
            .params
            .iter()
            .zip(given)
            .find(|(p, f)| p.required && f.is_none())
            .map(|(p, _)| p)
        else {
            return Ok(());
        };
        let end = description.input().map_or(0, |s| s.len());
        let how = match p.position {
            Some(_) if self.positional.contains(&p.name) => format!(
                "; give it as `{}={}` or as a positional field",
                p.name,
                example_for(p.kind)
            ),
            _ => format!("; give it as `{}={}`", p.name, example_for(p.kind)),
        };
        Err(description
            .error(
                ErrorKind::MissingParameter,
                end..end,
                format!("`{prefix}` needs `{}` ({}){how}", p.name, p.help),
            )
            .with_parameter(p.name))
    }
}

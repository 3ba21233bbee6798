//! The `exec:` description: the program and its arguments as positional fields, then options.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use endpoints_core::params::{Args, Conflict, Param, ParamKind, closest};
use endpoints_core::{ClientEndpoint, Description, ErrorKind, Field, ParseError, escape};

use crate::client::{ExecClientEndpoint, ExecConfig, Stderr};

/// What the canonical form shows in place of an `env=` value.
pub(crate) const REDACTED: &str = "***";

/// The words `stderr=` takes.
const STDERR_CHOICES: &[&str] = &["log", "inherit", "drop"];

/// Parameters of the `exec:` client. The program's arguments are the positional fields after
/// it; they are not a declared parameter (any number of them).
pub static PARAMS: &[Param] = &[
    Param::required("program", ParamKind::Text)
        .at(0)
        .help("the program: a path, or a name searched in PATH; its arguments are the positional fields after it (no shell: name one, as in `exec:sh:-c:...`)"),
    Param::optional("env", ParamKind::Text).secret_after_name()
        .help("`NAME=value` set in the child's environment; repeat `env=` for more; the value is shown as `***`"),
    Param::optional("unsetEnv", ParamKind::List)
        .help("names removed from the inherited environment (comma-separated)"),
    Param::optional("clearEnv", ParamKind::Bool)
        .default("0")
        .help("1: do not inherit this process's environment (`env=` still adds)"),
    Param::optional("cwd", ParamKind::Path)
        .help("the child's working directory (default: this process's)"),
    Param::optional("stderr", ParamKind::Choice(STDERR_CHOICES))
        .default("log")
        .help("the child's stderr: `log` (line by line at WARN with the program's name, bounded), `inherit` (this process's stderr) or `drop`"),
    Param::optional("grace", ParamKind::Duration)
        .default("5")
        .help("on close, how long the child's process group has between SIGTERM and SIGKILL"),
];

/// The declared names, for the check of undeclared keys.
fn declared() -> impl Iterator<Item = &'static str> + Clone {
    PARAMS.iter().map(|p| p.name)
}

fn build(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    refuse_arguments_that_look_like_keywords(d)?;
    let by_keyword = d.get_field("program").is_some();
    let n = d.positionals().count();
    // Positional fields: the program (unless given as `program=`), then its arguments, which
    // map to no declared parameter (Args skips them).
    let mut names: Vec<&'static str> = Vec::with_capacity(n + 1);
    if !by_keyword {
        names.push("program");
    }
    names.resize(n.max(names.len()), "argument");
    let args = Args::parse_mapped(d, PARAMS, &names, Conflict::Error)?;
    let program_v = args.required("program")?;
    let program = program_v.path()?;
    check_program(d, &program_v)?;
    let mut arguments: Vec<String> = d
        .positionals()
        .map(|f| f.value().to_owned())
        .collect::<Vec<_>>();
    if !by_keyword && !arguments.is_empty() {
        arguments.remove(0);
    }
    if let Some(bad) = d
        .positionals()
        .skip(usize::from(!by_keyword))
        .find(|f| f.value().contains('\0'))
    {
        return Err(d
            .error(
                ErrorKind::InvalidValue,
                bad.span(),
                "an argument of `exec` contains a NUL character, which no program can receive",
            )
            .with_parameter("program"));
    }

    let mut env: Vec<(OsString, OsString)> = Vec::new();
    for f in d.fields().iter().filter(|f| f.key() == Some("env")) {
        let bad = |why: &str| {
            d.error(
                ErrorKind::InvalidValue,
                f.value_span(),
                format!("invalid `env` for `exec`: {why}"),
            )
            .with_parameter("env")
        };
        let Some((name, value)) = f.value().split_once('=') else {
            return Err(bad("expected `NAME=value`").with_suggestion(format!("{}=", f.value())));
        };
        if name.is_empty() {
            return Err(bad("the variable's name is empty"));
        }
        if name.contains('\0') || value.contains('\0') {
            return Err(bad("a NUL character cannot be in the environment"));
        }
        env.push((name.into(), value.into()));
    }
    let mut unset: Vec<OsString> = Vec::new();
    if let Some(v) = args.get("unsetEnv") {
        for name in v.as_str().split(',').filter(|n| !n.is_empty()) {
            if name.contains('=') || name.contains('\0') {
                return Err(v.invalid(format_args!(
                    "`{}` is not a variable name (no `=` or NUL)",
                    name.escape_debug()
                )));
            }
            unset.push(name.into());
        }
    }
    let clear_env = args.required("clearEnv")?.flag()?;
    let cwd: Option<PathBuf> = args.get("cwd").map(|v| v.path()).transpose()?;
    let stderr = match args.required("stderr")?.choice(STDERR_CHOICES)? {
        "inherit" => Stderr::Inherit,
        "drop" => Stderr::Drop,
        _ => Stderr::Log,
    };
    let grace: Duration = args.required("grace")?.duration()?;

    let mut canonical = Description::new("exec");
    canonical.push(Field::positional(program.display().to_string()));
    for a in &arguments {
        canonical.push(Field::positional(a.clone()));
    }
    // The values may be secrets (a token for the program): the canonical form, which every
    // log line, error and handover key shows, has the names only.
    for (name, _) in &env {
        canonical.push(Field::keyword(
            "env",
            format!("{}={REDACTED}", name.to_string_lossy()),
        ));
    }
    if !unset.is_empty() {
        let names: Vec<String> = unset
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        canonical.push(Field::keyword("unsetEnv", names.join(",")));
    }
    canonical.push(Field::keyword(
        "clearEnv",
        if clear_env { "1" } else { "0" },
    ));
    if let Some(c) = &cwd {
        canonical.push(Field::keyword("cwd", c.display().to_string()));
    }
    canonical.push(Field::keyword(
        "stderr",
        match stderr {
            Stderr::Log => "log",
            Stderr::Inherit => "inherit",
            Stderr::Drop => "drop",
        },
    ));
    canonical.push(Field::keyword("grace", grace.as_secs_f64().to_string()));

    Ok(Box::new(ExecClientEndpoint::new(
        ExecConfig {
            program,
            arguments,
            env,
            unset,
            clear_env,
            cwd,
            stderr,
            grace,
        },
        canonical,
    )))
}

/// `exec:env:FOO=bar:cmd` or `exec:prog:--opt=1`: an argument with an unescaped `=` parses as
/// a keyword field. Unless its key is close to a declared parameter (a typo, which `Args`
/// reports), say so and suggest the escaped argument.
fn refuse_arguments_that_look_like_keywords(d: &Description) -> Result<(), ParseError> {
    for f in d.fields() {
        let Some(key) = f.key() else { continue };
        if declared().any(|n| n == key) || closest(key, declared()).is_some() {
            continue;
        }
        let escaped = format!("{}\\={}", escape(key), escape(f.value()));
        return Err(d
            .error(
                ErrorKind::UnknownParameter,
                f.key_span().unwrap_or_else(|| f.span()),
                format!(
                    "unknown parameter `{key}` for `exec`; if `{key}={}` is an argument of the \
                     program, escape its `=`",
                    f.value()
                ),
            )
            .with_parameter(key.to_owned())
            .with_suggestion(escaped));
    }
    Ok(())
}

/// The program, checked when the description is built (at start, not at each connection): a
/// shell command line in one field (`exec:sh -c "echo hi"`) is an error suggesting the
/// fields (`exec:sh:-c:echo hi`); an absolute path to nothing is an error; a bare name not in
/// `PATH` now, or a path to something that is not an executable file now, is a warning (it
/// may be there before the first connection).
fn check_program(
    d: &Description,
    program: &endpoints_core::params::Value<'_>,
) -> Result<(), ParseError> {
    let text = program.as_str();
    let found = find_program(text);
    if found.is_some() {
        return Ok(());
    }
    let words = shell_words(text);
    if words.len() > 1 && find_program(&words[0]).is_some() {
        let fields: Vec<String> = words.iter().map(|w| escape(w)).collect();
        let span = program.span();
        let input = d.input().map_or("", |i| i);
        let fixed = match (input.get(..span.start), input.get(span.end..)) {
            (Some(before), Some(after)) => format!("{before}{}{after}", fields.join(":")),
            _ => format!("exec:{}", fields.join(":")),
        };
        return Err(program
            .invalid(format!(
                "`{text}` is a shell command line, not a program: `exec:` runs no shell and \
                 takes the program and each argument as a field of its own, separated by `:`"
            ))
            .with_suggestion(fixed));
    }
    let path = std::path::Path::new(text);
    if path.is_absolute()
        && std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(program.invalid(format!(
            "`{text}`: no such file; every connection would fail (give the program's path, or \
             a name in PATH)"
        )));
    }
    if text.contains('/') {
        tracing::warn!(
            program = text,
            "exec: `{text}` is not an executable file now: each connection fails until it is"
        );
    } else {
        tracing::warn!(
            program = text,
            "exec: `{text}` is not in PATH now: each connection fails until it is (a typo? give \
             its path)"
        );
    }
    Ok(())
}

/// The executable file `program` names now: a path (with a `/`) as it is, a bare name
/// searched in `PATH`.
fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// A shell command line split into words as `sh` would (quotes and backslashes; no
/// expansion): `sh -c "echo hi"` is `sh`, `-c`, `echo hi`.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => word.push(n),
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                            None => word.push('\\'),
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod program_tests {
    use super::shell_words;

    #[test]
    fn shell_words_split_as_sh_does() {
        assert_eq!(shell_words(r#"sh -c "echo hi""#), ["sh", "-c", "echo hi"]);
        assert_eq!(shell_words(r"a 'b c'  d\ e"), ["a", "b c", "d e"]);
        assert_eq!(shell_words(r#"x "a\"b" '' "#), ["x", "a\"b", ""]);
        assert_eq!(shell_words("   "), Vec::<String>::new());
    }
}

endpoints_core::register_client! {
    prefix: "exec",
    summary: "run a program: the connection is its stdin and stdout, its exit status ends the stream (no shell)",
    params: PARAMS,
    build: build,
}

//! Hiding secret values in description text that core shows (a parse error's quoted input,
//! `Debug`): the values of parameters some registered plugin declares [`Param::secret`] or
//! [`Param::secret_after_name`], at every nesting level.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

#[cfg(doc)]
use super::declare::Param;
use super::declare::Secrecy;

/// What replaces a secret value.
const MASK: &str = "***";

/// `input` with the value of every secret parameter replaced by `***`: `password=hunter2`
/// becomes `password=***`, `env=TOKEN=s3cret` becomes `env=TOKEN=***`, also inside nested
/// descriptions (`endpoint=socks5\:...\:password=hunter2`). Which parameters are secret
/// comes from the declarations of the plugins linked into this program.
pub fn redact(input: &str) -> Cow<'_, str> {
    let r = Redacted::new(input);
    if r.regions.is_empty() {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(r.text)
    }
}

/// The secret parameter names every registered plugin declares, strongest secrecy first
/// where two plugins disagree.
fn registered() -> &'static [(&'static str, Secrecy)] {
    static SECRETS: OnceLock<Vec<(&'static str, Secrecy)>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut all: Vec<(&'static str, Secrecy)> = crate::registry::plugins()
            .flat_map(|p| p.params().iter())
            .filter(|p| p.secrecy != Secrecy::Shown)
            .map(|p| (p.name, p.secrecy))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
        all.dedup_by(|later, first| later.0 == first.0);
        all
    })
}

/// Redacted text and where its replacements are, to move a span of the input onto it (for
/// a caret line under text shown with [`redact`]).
///
/// ```
/// use endpoints_core::params::Redacted;
///
/// let input = "socks5:h:1:user=u:password=hunter2:bogus=1";
/// let r = Redacted::new(input);
/// # let _ = &r;
/// ```
#[derive(Clone, Debug)]
pub struct Redacted {
    text: String,
    /// (replaced range of the input, start of the mask in `text`)
    regions: Vec<(Range<usize>, usize)>,
}

impl Redacted {
    /// `input` redacted against the registered plugins' declarations.
    pub fn new(input: &str) -> Self {
        Self::with(input, registered())
    }

    pub(crate) fn with(input: &str, secrets: &[(&str, Secrecy)]) -> Self {
        let mut hide = Vec::new();
        if !secrets.is_empty() {
            find(input, secrets, &mut hide);
        }
        let mut text = String::with_capacity(input.len());
        let mut regions = Vec::with_capacity(hide.len());
        let mut at = 0;
        for r in hide {
            text.push_str(&input[at..r.start]);
            regions.push((r.clone(), text.len()));
            text.push_str(MASK);
            at = r.end;
        }
        text.push_str(&input[at..]);
        Self { text, regions }
    }

    /// The redacted text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where byte `pos` of the input is in the redacted text; a position inside a hidden
    /// value moves to the mask's start (`end: false`) or end (`end: true`).
    pub fn map(&self, pos: usize, end: bool) -> usize {
        let mut shift: isize = 0;
        for (r, out) in &self.regions {
            let (before, inside) = if end {
                (pos <= r.start, pos <= r.end)
            } else {
                (pos < r.start, pos < r.end)
            };
            if before {
                break;
            }
            if inside {
                return if end { out + MASK.len() } else { *out };
            }
            shift += MASK.len() as isize - r.len() as isize;
        }
        (pos as isize + shift).max(0) as usize
    }
}

/// The nesting level a `:` separates at, given the backslashes right before it: a `:` with
/// an even run is a separator of the top level; an odd run `2k+1` is an escaped `:` whose
/// decoded run is `k`, judged again one level down.
fn level(mut run: usize) -> usize {
    let mut level = 0;
    while run % 2 == 1 {
        run = (run - 1) / 2;
        level += 1;
    }
    level
}

/// The backslashes right before byte `i`.
fn run_before(b: &[u8], i: usize) -> usize {
    b[..i].iter().rev().take_while(|c| **c == b'\\').count()
}

/// The ranges of `input` to hide, in order.
fn find(input: &str, secrets: &[(&str, Secrecy)], out: &mut Vec<Range<usize>>) {
    let b = input.as_bytes();
    let mut i = 0;
    while i <= b.len() {
        // A field starts at 0 or after a `:`; its level is that `:`'s.
        let (start, depth) = if i == 0 {
            (0, 0)
        } else if b[i - 1] == b':' {
            (i, level(run_before(b, i - 1)))
        } else {
            i += 1;
            continue;
        };
        i += 1;
        let Some((name, secrecy)) = secrets.iter().find(|(name, _)| {
            b[start..].starts_with(name.as_bytes()) && b.get(start + name.len()) == Some(&b'=')
        }) else {
            continue;
        };
        let value = start + name.len() + 1;
        // The value ends at the first `:` separating this level or an outer one.
        // A separator of level L is its `:` and the last 2^L - 1 backslashes before it.
        let end = (value..b.len())
            .filter(|&j| b[j] == b':')
            .find_map(|j| {
                let level = level(run_before(b, j));
                (level <= depth).then(|| j - ((1usize << level.min(16)) - 1))
            })
            .unwrap_or(b.len())
            .max(value);
        let from = match secrecy {
            Secrecy::AfterName => b[value..end]
                .iter()
                .position(|c| *c == b'=')
                .map_or(value, |k| value + k + 1),
            _ => value,
        };
        if from < end {
            out.push(from..end);
        }
        i = end.max(start + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: &[(&str, Secrecy)] = &[
        ("env", Secrecy::AfterName),
        ("password", Secrecy::Value),
        ("token", Secrecy::Value),
    ];

    fn hide(s: &str) -> String {
        Redacted::with(s, SECRETS).text
    }

    #[test]
    fn a_top_level_password_is_hidden_and_the_rest_kept() {
        assert_eq!(
            hide("socks5:example.com:80:user=u:password=hunter2:bogus=1"),
            "socks5:example.com:80:user=u:password=***:bogus=1"
        );
        assert_eq!(
            hide("socks5:h:1:password=hunter2"),
            "socks5:h:1:password=***"
        );
    }

    #[test]
    fn an_escaped_colon_inside_the_value_is_hidden_too() {
        assert_eq!(
            hide(r"socks5:h:1:password=a\:b\\:user=u"),
            r"socks5:h:1:password=***:user=u"
        );
    }

    #[test]
    fn a_nested_password_is_hidden_up_to_its_own_separator() {
        assert_eq!(
            hide(r"tls:h:443:endpoint=socks5\:h\:1\:password=p\\\:q\:user=u:trustRoots=x"),
            r"tls:h:443:endpoint=socks5\:h\:1\:password=***\:user=u:trustRoots=x"
        );
        // The nested value ends where the outer one does.
        assert_eq!(
            hide(r"tls:h:443:endpoint=socks5\:h\:1\:password=p:x=1"),
            r"tls:h:443:endpoint=socks5\:h\:1\:password=***:x=1"
        );
    }

    #[test]
    fn env_keeps_the_name_and_hides_the_value() {
        assert_eq!(
            hide("exec:env=TOKEN=s3cret:cmd=true"),
            "exec:env=TOKEN=***:cmd=true"
        );
        assert_eq!(hide("exec:env=nonsense:cmd=true"), "exec:env=***:cmd=true");
    }

    #[test]
    fn names_match_whole_keys_only() {
        assert_eq!(
            hide("x:mypassword=1:passwordFile=/p"),
            "x:mypassword=1:passwordFile=/p"
        );
        assert_eq!(hide("x:password="), "x:password=");
    }

    #[test]
    fn spans_move_onto_the_redacted_text() {
        let input = "s:password=hunter2:bogus=1";
        let r = Redacted::with(input, SECRETS);
        assert_eq!(r.text, "s:password=***:bogus=1");
        let bogus = input.find("bogus").expect("in the text");
        assert_eq!(
            r.map(bogus, false),
            r.text.find("bogus").expect("in the text")
        );
        let value = input.find("hunter2").expect("in the text");
        assert_eq!(
            r.map(value, false),
            r.text.find("***").expect("in the text")
        );
        assert_eq!(
            r.map(value + 7, true),
            r.text.find("***").expect("in the text") + 3
        );
        assert_eq!(r.map(0, false), 0);
        // A span ending where the value starts stays before the mask.
        assert_eq!(r.map(value, true), value);
        assert_eq!(r.map(input.len(), true), r.text.len());
    }

    #[test]
    fn no_input_panics() {
        // Bounded: 20,000 random strings over the characters that matter.
        let alphabet = [":", "\\", "=", "env", "password", "token", "x", "\u{e9}"];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(x % 24) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let r = Redacted::with(&s, SECRETS);
            // Hiding is idempotent: what is hidden once has nothing more to hide.
            assert_eq!(Redacted::with(&r.text, SECRETS).text, r.text, "{s:?}");
            for p in (0..=s.len()).filter(|p| s.is_char_boundary(*p)) {
                assert!(r.map(p, false) <= r.map(p, true));
                assert!(r.text.is_char_boundary(r.map(p, true)), "{s:?} at {p}");
            }
        }
        for s in [
            "",
            ":",
            "\\",
            "password=",
            "password=\\",
            ":password=:",
            "\\:password=\u{e9}\\\\:",
            "env=",
            "env==",
            "a:env=\u{e9}=\u{e9}:b",
        ] {
            let r = Redacted::with(s, SECRETS);
            for p in (0..=s.len()).filter(|p| s.is_char_boundary(*p)) {
                assert!(r.map(p, false) <= r.map(p, true).max(r.map(p, false)));
                assert!(r.map(p, true) <= r.text.len(), "{s:?} at {p}");
                assert!(r.text.is_char_boundary(r.map(p, false).min(r.text.len())));
            }
        }
    }
}

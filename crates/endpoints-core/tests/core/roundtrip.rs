//! Property tests: display/parse round trip and no panic on any input.

use endpoints_core::{Description, Field, escape};
use proptest::prelude::*;

/// Text biased towards the grammar's special characters.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => Just(':'),
            4 => Just('='),
            4 => Just('\\'),
            2 => Just('['),
            2 => Just(']'),
            8 => proptest::char::range('a', 'z'),
            2 => proptest::char::range('0', '9'),
            1 => Just(' '),
            1 => Just('é'),
            1 => Just('\u{0}'),
            1 => any::<char>(),
        ],
        0..12,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        text().prop_map(Field::positional),
        (text(), text()).prop_map(|(k, v)| Field::keyword(k, v)),
    ]
}

fn description() -> impl Strategy<Value = Description> {
    proptest::collection::vec(field(), 1..8)
        .prop_map(|fields| Description::from_fields(fields).expect("non-empty"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn display_then_parse_is_identity(d in description()) {
        let shown = d.to_string();
        let back = Description::parse(&shown);
        prop_assert!(back.is_ok(), "{shown:?} did not parse: {back:?}");
        prop_assert_eq!(back.ok(), Some(d));
    }

    #[test]
    fn parse_never_panics_and_reparses_to_itself(s in text()) {
        if let Ok(d) = Description::parse(&s) {
            let shown = d.to_string();
            prop_assert_eq!(Description::parse(&shown).ok(), Some(d));
            for f in Description::parse(&s).expect("parsed above").fields() {
                prop_assert!(f.span().end <= s.len());
                prop_assert!(s.is_char_boundary(f.span().start) && s.is_char_boundary(f.span().end));
            }
        }
    }

    #[test]
    fn escaped_values_nest(outer in text(), inner in text()) {
        let d = Description::parse(&format!("{}=x:endpoint={}", escape(&outer).replace('=', "\\="), escape(&inner)));
        let d = d.expect("escaped text parses");
        prop_assert_eq!(d.get("endpoint"), Some(inner.as_str()));
    }
}

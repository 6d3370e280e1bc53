//! Shortening of offending values before they go into error messages.

/// The most characters of an offending value an error message shows. Long enough for a whole
/// sha512 digest (135 characters), short enough to keep a hostile value out of logs.
pub(crate) const MAX_SHOWN: usize = 150;

/// `value` cut to [`MAX_SHOWN`] characters, with `...` appended when something was cut.
pub(crate) fn truncate(value: &str) -> String {
    match value.char_indices().nth(MAX_SHOWN) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}...", &value[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let long = "x".repeat(MAX_SHOWN + 1);
        let exact = "y".repeat(MAX_SHOWN);
        let wide = "é".repeat(MAX_SHOWN + 5);
        let cases: Vec<(&str, String)> = vec![
            ("", String::new()),
            ("abc", "abc".into()),
            (&exact, exact.clone()),
            (&long, format!("{}...", "x".repeat(MAX_SHOWN))),
            (&wide, format!("{}...", "é".repeat(MAX_SHOWN))),
        ];
        for (input, want) in cases {
            assert_eq!(truncate(input), want, "{input}");
        }
    }
}

//! Comparing schema texts: a unified diff for people, the objects that
//! differ, and the two kinds of difference that are not a
//! defect: columns in another order, and constants PostgreSQL folded when
//! the object was created (`'now'::timestamp` in a view, a column default
//! or a function's argument default is stored as the literal time of the
//! `CREATE`, so every re-creation differs).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// A unified diff of two schema texts (`similar::TextDiff`, 3 lines of
/// context, headers `before_label`/`after_label`); empty string when equal.
pub fn schema_diff(before: &str, after: &str, before_label: &str, after_label: &str) -> String {
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(before, after).unified_diff().context_radius(3).header(before_label, after_label).to_string()
}

/// True when the two texts differ and every differing line is a column (or
/// composite attribute) position line, `  column <name> position <n>`: the
/// objects are the same except for the order of their columns.
pub fn column_order_only(before: &str, after: &str) -> bool {
    if before == after {
        return false;
    }
    let is_position = |line: &str| {
        let Some(rest) = line.strip_prefix("  column ").or_else(|| line.strip_prefix("  attribute ")) else {
            return false;
        };
        match rest.rsplit_once(" position ") {
            Some((name, n)) => !name.is_empty() && !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()),
            None => false,
        }
    };
    let diff = similar::TextDiff::from_lines(before, after);
    diff.iter_all_changes().filter(|c| c.tag() != similar::ChangeTag::Equal).all(|c| is_position(c.value().trim_end_matches('\n')))
}

/// The text with every date or timestamp literal (`'2026-11-26'`,
/// `'2026-11-26 15:59:14.123456+00'`) replaced by `'<time>'`.
pub(crate) fn fold_times(text: &str) -> std::borrow::Cow<'_, str> {
    static TIME: OnceLock<regex::Regex> = OnceLock::new();
    let re = TIME.get_or_init(|| {
        regex::Regex::new(r"'\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:[+-]\d{2}(?::\d{2}(?::\d{2})?)?)?(?: BC)?'")
            .expect("a valid pattern")
    });
    re.replace_all(text, "'<time>'")
}

/// How two states' schema blocks (header -> block text) differ.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct BlockDiff {
    /// Headers whose blocks differ in more than time literals, with the
    /// texts of those blocks on each side.
    pub real: Vec<String>,
    pub real_before: String,
    pub real_after: String,
    /// Headers whose blocks differ only in date and time literals.
    pub folded: Vec<String>,
    pub folded_before: String,
    pub folded_after: String,
}

/// Compares two states' blocks. Both maps hold whole blocks (header line
/// and detail lines), keyed by header.
pub(crate) fn diff_blocks(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> BlockDiff {
    let mut d = BlockDiff::default();
    let headers: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for h in headers {
        let (b, a) = (before.get(h), after.get(h));
        if b == a {
            continue;
        }
        let folded = matches!((b, a), (Some(b), Some(a)) if fold_times(b) == fold_times(a));
        let (names, bt, at) = if folded { (&mut d.folded, &mut d.folded_before, &mut d.folded_after) } else { (&mut d.real, &mut d.real_before, &mut d.real_after) };
        names.push(h.clone());
        bt.push_str(b.map(String::as_str).unwrap_or(""));
        at.push_str(a.map(String::as_str).unwrap_or(""));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(blocks: &[(&str, &str)]) -> BTreeMap<String, String> {
        blocks.iter().map(|(h, b)| (h.to_string(), format!("{h}\n{b}"))).collect()
    }

    #[test]
    fn time_literals_folded_at_creation_are_classified_apart() {
        let before = map(&[
            ("view public.recent", "  definition:\n     SELECT t.id FROM t WHERE t.at > '2026-11-26 15:59:14.123456'::timestamp without time zone;\n"),
            ("table public.t", "  column at: timestamp with time zone DEFAULT '2026-11-26 15:59:14+00'::timestamp with time zone\n"),
            ("table public.u", "  column id position 1\n"),
        ]);
        let after = map(&[
            ("view public.recent", "  definition:\n     SELECT t.id FROM t WHERE t.at > '2026-11-26 15:59:15.5'::timestamp without time zone;\n"),
            ("table public.t", "  column at: timestamp with time zone DEFAULT '2026-11-27 01:00:00+00'::timestamp with time zone\n"),
            ("table public.u", "  column id position 2\n"),
        ]);
        let d = diff_blocks(&before, &after);
        assert_eq!(d.folded, ["table public.t", "view public.recent"]);
        assert_eq!(d.real, ["table public.u"]);
        assert!(column_order_only(&d.real_before, &d.real_after));
        assert!(d.folded_after.contains("15:59:15.5"));

        let gone = map(&[("view public.recent", "  definition:\n     SELECT 1 WHERE '2026-11-26'::date < now();\n")]);
        let d = diff_blocks(&gone, &BTreeMap::new());
        assert_eq!(d.real, ["view public.recent"], "an object on one side only is a real difference");
        let other = map(&[("view public.recent", "  definition:\n     SELECT 2 WHERE '2026-11-26'::date < now();\n")]);
        assert_eq!(diff_blocks(&gone, &other).real, ["view public.recent"], "more than a time differs");
    }

    #[test]
    fn column_order_is_position_lines_only() {
        let a = "table public.t\n  column a position 1\n  column b position 2\n";
        let b = "table public.t\n  column a position 2\n  column b position 1\n";
        assert!(column_order_only(a, b));
        assert!(!column_order_only(a, a));
        assert!(!column_order_only(a, "schema public\n"));
    }
}

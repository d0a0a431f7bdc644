//! A unified diff (what verify's schema findings carry) as a side-by-side
//! table: before on the left, after on the right, each hunk's removed and
//! added lines paired, changed lines highlighted and, within a changed
//! pair, the changed words marked.

use maud::{html, Markup};
use similar::{ChangeTag, TextDiff};

/// One row of the side-by-side table.
#[derive(Debug, PartialEq)]
enum Row<'a> {
    /// `@@ -a,b +c,d @@`
    Hunk(&'a str),
    /// The same line on both sides.
    Same { old: usize, new: usize, text: &'a str },
    /// A removed line, an added line, or both side by side.
    Changed { old: Option<(usize, &'a str)>, new: Option<(usize, &'a str)> },
}

/// Parses a unified diff into rows; the `---` / `+++` header is left out.
fn rows(unified: &str) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    let (mut old_no, mut new_no) = (0usize, 0usize);
    let (mut removed, mut added): (Side, Side) = (Vec::new(), Vec::new());
    for line in unified.lines() {
        if line.starts_with("--- ") || line.starts_with("+++ ") || line.starts_with('\\') {
            continue;
        }
        if let Some(h) = line.strip_prefix("@@") {
            flush(&mut out, &mut removed, &mut added);
            let mut nums = h.split_whitespace().filter_map(|t| t.trim_start_matches(['-', '+']).split(',').next()?.parse::<usize>().ok());
            old_no = nums.next().unwrap_or(1);
            new_no = nums.next().unwrap_or(1);
            out.push(Row::Hunk(line));
        } else if let Some(t) = line.strip_prefix('-') {
            removed.push((old_no, t));
            old_no += 1;
        } else if let Some(t) = line.strip_prefix('+') {
            added.push((new_no, t));
            new_no += 1;
        } else {
            flush(&mut out, &mut removed, &mut added);
            out.push(Row::Same { old: old_no, new: new_no, text: line.strip_prefix(' ').unwrap_or(line) });
            old_no += 1;
            new_no += 1;
        }
    }
    flush(&mut out, &mut removed, &mut added);
    out
}

/// Lines of one side of a run of changes, with their numbers.
type Side<'a> = Vec<(usize, &'a str)>;

/// The removed and added lines of a run of changes, side by side.
fn flush<'a>(out: &mut Vec<Row<'a>>, removed: &mut Side<'a>, added: &mut Side<'a>) {
    let n = removed.len().max(added.len());
    let (r, a) = (std::mem::take(removed), std::mem::take(added));
    for i in 0..n {
        out.push(Row::Changed { old: r.get(i).copied(), new: a.get(i).copied() });
    }
}

/// The words of `old` and `new` with the changed ones in `<mark>`.
fn marked(old: &str, new: &str) -> (Markup, Markup) {
    let diff = TextDiff::from_words(old, new);
    let changes: Vec<(ChangeTag, String)> = diff.iter_all_changes().map(|c| (c.tag(), c.value().to_string())).collect();
    let side = |keep: ChangeTag| {
        html! {
            @for (tag, text) in &changes {
                @if *tag == ChangeTag::Equal { (text) }
                @else if *tag == keep { mark { (text) } }
            }
        }
    };
    (side(ChangeTag::Delete), side(ChangeTag::Insert))
}

/// The diff as a side-by-side table.
pub fn side_by_side(unified: &str) -> Markup {
    html! {
        div.scroll {
            table.diff {
                colgroup { col.no; col; col.no; col; }
                thead { tr { th colspan="2" { "before" } th colspan="2" { "after" } } }
                tbody {
                    @for row in rows(unified) {
                        @match row {
                            Row::Hunk(h) => tr.hunk { td colspan="4" { (h) } },
                            Row::Same { old, new, text } => tr { td.no { (old) } td.code { (text) } td.no { (new) } td.code { (text) } },
                            Row::Changed { old: Some((o, ot)), new: Some((n, nt)) } => {
                                @let (left, right) = marked(ot, nt);
                                tr { td.no { (o) } td.code.del { (left) } td.no { (n) } td.code.add { (right) } }
                            }
                            Row::Changed { old, new } => tr {
                                td.no { @if let Some((o, _)) = old { (o) } }
                                td.code.del[old.is_some()] { @if let Some((_, t)) = old { (t) } }
                                td.no { @if let Some((n, _)) = new { (n) } }
                                td.code.add[new.is_some()] { @if let Some((_, t)) = new { (t) } }
                            },
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "--- before\n+++ after\n@@ -1,4 +1,4 @@\n table public.t\n-  column a integer\n+  column a bigint\n   column b text\n+  index t_b_idx\n";

    #[test]
    fn removed_and_added_lines_pair_up_with_their_line_numbers() {
        let r = rows(DIFF);
        assert_eq!(r[0], Row::Hunk("@@ -1,4 +1,4 @@"));
        assert_eq!(r[1], Row::Same { old: 1, new: 1, text: "table public.t" });
        assert_eq!(r[2], Row::Changed { old: Some((2, "  column a integer")), new: Some((2, "  column a bigint")) });
        assert_eq!(r[3], Row::Same { old: 3, new: 3, text: "  column b text" });
        assert_eq!(r[4], Row::Changed { old: None, new: Some((4, "  index t_b_idx")) });
    }

    #[test]
    fn changed_words_are_marked_and_names_escaped() {
        let html = side_by_side("@@ -1 +1 @@\n-table \"<script>\"\n+table \"<script>\" x\n").into_string();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "{html}");
        assert!(html.contains("<mark>x</mark>"), "{html}");
    }
}

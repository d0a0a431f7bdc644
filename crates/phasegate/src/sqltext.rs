//! Just enough SQL lexing to split a file into statements and to map a
//! character offset back to a line and column: quotes, quoted identifiers,
//! dollar quotes, line and (nested) block comments are respected.

/// A statement of a SQL text: its byte range (without the terminating `;`)
/// and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub start: usize,
    pub end: usize,
    pub line: usize,
}

/// Splits `text` into statements that hold something besides comments and
/// whitespace.
pub fn statements(text: &str) -> Vec<Statement> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut start = 0;
    let mut has_code = false;
    let mut code_start = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' | b'/' if comment_end(b, i).is_some() => {
                i = comment_end(b, i).unwrap_or(b.len());
                continue;
            }
            b'\'' | b'"' => {
                if !has_code {
                    has_code = true;
                    code_start = i;
                }
                let q = c;
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'$' => {
                if let Some(tag_len) = dollar_tag(&b[i..]) {
                    if !has_code {
                        has_code = true;
                        code_start = i;
                    }
                    let tag = &text[i..i + tag_len];
                    i += tag_len;
                    match text[i..].find(tag) {
                        Some(pos) => i += pos + tag_len,
                        None => i = b.len(),
                    }
                    continue;
                }
            }
            b';' => {
                if has_code {
                    out.push(Statement { start: code_start, end: i, line: line_of(text, code_start) });
                }
                has_code = false;
                start = i + 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        if !c.is_ascii_whitespace() && !has_code {
            has_code = true;
            code_start = i;
        }
        i += 1;
    }
    let _ = start;
    if has_code {
        let end = text.trim_end().len().max(code_start);
        out.push(Statement { start: code_start, end, line: line_of(text, code_start) });
    }
    out
}

/// Like `statements`, but each of `blocks` (byte ranges another tool marks
/// as one statement, e.g. goose `StatementBegin`/`StatementEnd`) is one
/// statement whatever semicolons it holds; the text between blocks is split
/// as usual.
pub fn statements_with_blocks(text: &str, blocks: &[std::ops::Range<usize>]) -> Vec<Statement> {
    if blocks.is_empty() {
        return statements(text);
    }
    let mut blocks = blocks.to_vec();
    blocks.sort_by_key(|b| b.start);
    let mut out = Vec::new();
    let split_gap = |from: usize, to: usize, out: &mut Vec<Statement>| {
        for st in statements(&text[from..to]) {
            out.push(Statement { start: from + st.start, end: from + st.end, line: line_of(text, from + st.start) });
        }
    };
    let mut gap_start = 0;
    for b in blocks {
        split_gap(gap_start, b.start.max(gap_start), &mut out);
        let code = &text[b.clone()];
        let start = b.start + (code.len() - code.trim_start().len());
        let end = b.start + code.trim_end().len();
        if end > start {
            out.push(Statement { start, end, line: line_of(text, start) });
        }
        gap_start = gap_start.max(b.end);
    }
    split_gap(gap_start, text.len(), &mut out);
    out
}

/// Where the comment starting at `b[i]` (`-- ...` to the end of the line, or
/// a nested `/* ... */`) ends; `None` when no comment starts there.
pub fn comment_end(b: &[u8], mut i: usize) -> Option<usize> {
    match (b.get(i), b.get(i + 1)) {
        (Some(b'-'), Some(b'-')) => {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            Some(i)
        }
        (Some(b'/'), Some(b'*')) => {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            Some(i.min(b.len()))
        }
        _ => None,
    }
}

/// Length of a dollar-quote tag (`$$` or `$tag$`) at the start of `b`.
pub fn dollar_tag(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'$') {
        return None;
    }
    let mut j = 1;
    while j < b.len() {
        let c = b[j];
        if c == b'$' {
            return Some(j + 1);
        }
        let ok = c == b'_' || c.is_ascii_alphabetic() || (j > 1 && c.is_ascii_digit());
        if !ok {
            return None;
        }
        j += 1;
    }
    None
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].bytes().filter(|&c| c == b'\n').count() + 1
}

/// 1-based (line, column) of a byte offset; the column counts characters.
pub fn line_col_of(text: &str, byte: usize) -> (usize, usize) {
    let byte = byte.min(text.len());
    let line_start = text[..byte].rfind('\n').map_or(0, |p| p + 1);
    (line_of(text, byte), text[line_start..byte].chars().count() + 1)
}

/// 1-based (line, column) of a 1-based character position as PostgreSQL
/// reports it, relative to `text`.
pub fn position_to_line_col(text: &str, char_pos: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (n, ch) in text.chars().enumerate() {
        if n + 1 >= char_pos {
            break;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// The text without its comments, whitespace collapsed; used to classify
/// statements by their leading keywords.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let code = match line.find("--") {
            Some(p) if !line[..p].contains('\'') => &line[..p],
            _ => line,
        };
        out.push_str(code);
        out.push(' ');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_respecting_quotes_and_dollar_bodies() {
        let sql = "-- head\nCREATE TABLE a (x text default ';');\n\nCREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql;\n/* c; */ SELECT 2";
        let st = statements(sql);
        assert_eq!(st.len(), 3);
        assert_eq!(st[0].line, 2);
        assert!(sql[st[1].start..st[1].end].ends_with("LANGUAGE sql"));
        assert_eq!(&sql[st[2].start..st[2].end], "SELECT 2");
    }

    #[test]
    fn blocks_run_whole_and_the_rest_is_split() {
        let text = "SELECT 1;\nCREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 2; SELECT 3;\n";
        let start = text.find("CREATE").unwrap();
        let end = text.find("SELECT 2").unwrap();
        let got: Vec<(&str, usize)> = statements_with_blocks(text, std::slice::from_ref(&(start..end))).iter().map(|s| (&text[s.start..s.end], s.line)).collect();
        assert_eq!(got, [("SELECT 1", 1), (text[start..end].trim_end(), 2), ("SELECT 2", 3), ("SELECT 3", 3)]);
        assert_eq!(statements(text).len(), 5, "without the block the rule is cut at its inner semicolon");
    }

    #[test]
    fn comment_only_text_has_no_statement() {
        assert!(statements("-- nothing\n/* here */\n").is_empty());
    }

    #[test]
    fn maps_positions_to_lines() {
        assert_eq!(position_to_line_col("ab\ncd\nef", 5), (2, 2));
        assert_eq!(position_to_line_col("ab", 1), (1, 1));
        assert_eq!(line_col_of("ab\nçd\nef", 6), (2, 3));
        assert_eq!(line_col_of("ab", 0), (1, 1));
    }
}

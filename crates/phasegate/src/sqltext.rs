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
/// whitespace: the tokens between semicolons.
pub fn statements(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut first: Option<&Lexeme> = None;
    let mut last: Option<&Lexeme> = None;
    let lexemes = lex(text);
    for l in &lexemes {
        if l.token == Token::Punct(';') {
            if let (Some(f), Some(e)) = (first.take(), last.take()) {
                out.push(Statement { start: f.start, end: e.end, line: line_of(text, f.start) });
            }
            continue;
        }
        first.get_or_insert(l);
        last = Some(l);
    }
    if let (Some(f), Some(e)) = (first, last) {
        out.push(Statement { start: f.start, end: e.end, line: line_of(text, f.start) });
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

/// A SQL token, just enough to find statements, names and keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An unquoted word (keyword or identifier), lower-cased as PostgreSQL
    /// folds it (ASCII only).
    Word(String),
    /// A double-quoted identifier, its `""` unescaped.
    Quoted(String),
    /// A string (also dollar-quoted or `E'...'`) or number literal.
    Literal,
    /// Any other character: `;`, `(`, `.`, operators, `:` of `:name`, ...
    Punct(char),
}

impl Token {
    pub fn is_word(&self, w: &str) -> bool {
        matches!(self, Token::Word(x) if x == w)
    }
    /// The identifier this token names, normalised as PostgreSQL would.
    pub fn ident(&self) -> Option<String> {
        match self {
            Token::Word(w) => Some(w.clone()),
            Token::Quoted(q) => Some(q.clone()),
            _ => None,
        }
    }
}

/// A token and its byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexeme {
    pub token: Token,
    pub start: usize,
    pub end: usize,
}

/// The tokens of a SQL text; comments and whitespace are skipped.
pub fn tokens(sql: &str) -> Vec<Token> {
    lex(sql).into_iter().map(|l| l.token).collect()
}

/// The tokens of a SQL text with their byte ranges. Quotes, quoted
/// identifiers, dollar quotes, `E'...'` escapes and (nested) block comments
/// are respected; an unterminated one runs to the end of the text. Works on
/// bytes: every byte it splits on is ASCII, so every range is on character
/// boundaries.
pub fn lex(sql: &str) -> Vec<Lexeme> {
    let b = sql.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let token = if let Some(end) = comment_end(b, i) {
            i = end;
            continue;
        } else if is_space(c) {
            i += 1;
            continue;
        } else if c == b'\'' || c == b'"' {
            let (text, end) = quoted(b, i, c, false);
            i = end;
            if c == b'"' {
                Token::Quoted(text)
            } else {
                Token::Literal
            }
        } else if (c == b'e' || c == b'E') && b.get(i + 1) == Some(&b'\'') {
            i = quoted(b, i + 1, b'\'', true).1;
            Token::Literal
        } else if let Some(tag_len) = dollar_tag(&b[i..]) {
            let tag = &sql[i..i + tag_len];
            i += tag_len;
            i = sql[i..].find(tag).map_or(b.len(), |p| i + p + tag_len);
            Token::Literal
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            Token::Literal
        } else if word(c) {
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            Token::Word(sql[start..i].to_ascii_lowercase())
        } else {
            // A multi-byte character outside a word cannot start here (bytes
            // >= 0x80 are word bytes), so this is one ASCII character.
            i += 1;
            Token::Punct(c as char)
        };
        out.push(Lexeme { token, start, end: i.min(b.len()) });
    }
    out
}

/// PostgreSQL's whitespace: space, tab, newline, carriage return, form feed
/// and vertical tab.
pub fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A quoted string or identifier starting at `b[open]` (the quote): its
/// text with doubled quotes (and, for `E'...'`, backslash escapes) undone,
/// and the index after the closing quote.
fn quoted(b: &[u8], open: usize, q: u8, backslash: bool) -> (String, usize) {
    let mut text = Vec::new();
    let mut i = open + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' && i + 1 < b.len() {
            text.push(b[i + 1]);
            i += 2;
        } else if b[i] == q && b.get(i + 1) == Some(&q) {
            text.push(q);
            i += 2;
        } else if b[i] == q {
            return (String::from_utf8_lossy(&text).into_owned(), i + 1);
        } else {
            text.push(b[i]);
            i += 1;
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), b.len())
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

/// The text without its comments, whitespace collapsed to one space; used
/// to classify statements by their leading keywords.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_end = None;
    for l in lex(text) {
        if prev_end.is_some_and(|e| e != l.start) {
            out.push(' ');
        }
        out.push_str(&text[l.start..l.end]);
        prev_end = Some(l.end);
    }
    out
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
    fn tokens_fold_words_and_unescape_quotes() {
        use Token::*;
        let t = tokens("ALTER TABLE \"My \"\"T\"\"\" -- c\n DROP COLUMN x, ADD y int DEFAULT E'a\\'b;' /* ; */ ; $f$ ; $f$ 12.5");
        assert_eq!(
            t,
            vec![
                Word("alter".into()),
                Word("table".into()),
                Quoted("My \"T\"".into()),
                Word("drop".into()),
                Word("column".into()),
                Word("x".into()),
                Punct(','),
                Word("add".into()),
                Word("y".into()),
                Word("int".into()),
                Word("default".into()),
                Literal,
                Punct(';'),
                Literal,
                Literal,
            ]
        );
        assert_eq!(strip_comments("CREATE  INDEX -- x\n CONCURRENTLY i ON t(a)"), "CREATE INDEX CONCURRENTLY i ON t(a)");
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

    #[test]
    fn blocks_run_whole_and_the_rest_is_split() {
        let text = "SELECT 1;\nCREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 2; SELECT 3;\n";
        let start = text.find("CREATE").unwrap();
        let end = text.find("SELECT 2").unwrap();
        let got: Vec<(&str, usize)> = statements_with_blocks(text, std::slice::from_ref(&(start..end))).iter().map(|s| (&text[s.start..s.end], s.line)).collect();
        assert_eq!(got, [("SELECT 1", 1), (text[start..end].trim_end(), 2), ("SELECT 2", 3), ("SELECT 3", 3)]);
        assert_eq!(statements(text).len(), 5, "without the block the rule is cut at its inner semicolon");
    }
}

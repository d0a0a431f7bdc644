//! Just enough SQL lexing to split a file into statements and to map a
//! byte offset back to a line and column: quotes, quoted identifiers,
//! dollar quotes, line and (nested) block comments are respected, and so is
//! a SQL-standard function body (`BEGIN ATOMIC ... END`), whose semicolons
//! do not end its `CREATE FUNCTION`.
//!
//! Every offset-to-line mapping goes through a `LineIndex`, built in one
//! pass over a text, so splitting or linting a file costs time linear in
//! its size (a 10 MB migration loads in well under a second; see the
//! README's Performance table). `control` recognises the statements a
//! phasegate file may not run: transaction control and the ways around the
//! backup triggers.

mod control;

pub use control::{transaction_control, trigger_bypass};

/// Where each line of a text starts, found in one pass; a byte offset maps
/// to its line by binary search.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        #[cfg(test)]
        work::indexed(text.len());
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|p| p + 1));
        LineIndex { starts }
    }

    /// 1-based line of a byte offset (offsets past the end are on the last line).
    pub fn line(&self, byte: usize) -> usize {
        self.starts.partition_point(|&s| s <= byte)
    }

    /// 1-based (line, column) of a byte offset of `text` (the text the index
    /// was built from); the column counts characters.
    pub fn line_col(&self, text: &str, byte: usize) -> (usize, usize) {
        let byte = byte.min(text.len());
        let line = self.line(byte);
        let start = self.starts[line - 1].min(byte);
        (line, text[start..byte].chars().count() + 1)
    }
}

/// A statement of a SQL text: its byte range (without the terminating `;`)
/// and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub start: usize,
    pub end: usize,
    pub line: usize,
}

/// A text lexed once: its tokens, its line index and its statements, each
/// with the range of its tokens in `lexemes`. Whatever reads a file's
/// statements and their tokens (splitting, the statements a file may not
/// run) reads them from here rather than lexing again.
pub struct Lexed<'a> {
    pub text: &'a str,
    pub lexemes: Vec<Lexeme>,
    pub index: LineIndex,
    pub statements: Vec<(Statement, std::ops::Range<usize>)>,
}

impl<'a> Lexed<'a> {
    pub fn new(text: &'a str) -> Lexed<'a> {
        let lexemes = lex(text);
        let index = LineIndex::new(text);
        let statements = split(&lexemes, 0, &index);
        Lexed { text, lexemes, index, statements }
    }
}

/// Splits `text` into statements that hold something besides comments and
/// whitespace: the tokens between semicolons (the semicolons of a
/// `BEGIN ATOMIC ... END` body belong to their `CREATE FUNCTION`, those
/// inside parentheses to their statement, as psql splits).
pub fn statements(text: &str) -> Vec<Statement> {
    let index = LineIndex::new(text);
    split(&lex(text), 0, &index).into_iter().map(|(st, _)| st).collect()
}

/// The statements of `lexemes` (lexed from a slice that starts at byte
/// `base` of the text `index` was built from), each with the range of its
/// lexemes.
fn split(lexemes: &[Lexeme], base: usize, index: &LineIndex) -> Vec<(Statement, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut push = |from: usize, to: usize| {
        let (start, end) = (base + lexemes[from].start, base + lexemes[to - 1].end);
        out.push((Statement { start, end, line: index.line(start) }, from..to));
    };
    let mut first: Option<usize> = None;
    let mut body = AtomicBody::default();
    for (k, l) in lexemes.iter().enumerate() {
        if l.token == Token::Punct(';') && !body.open() {
            if let Some(f) = first.take() {
                push(f, k);
            }
            body = AtomicBody::default();
            continue;
        }
        body.see(&l.token);
        first.get_or_insert(k);
    }
    if let Some(f) = first {
        push(f, lexemes.len());
    }
    out
}

/// psql's rule for SQL-standard function bodies (psqlscan.l): in a statement
/// that starts `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, outside
/// parentheses, `BEGIN` opens a block, `CASE` inside one opens another and
/// `END` closes one; a semicolon ends the statement only when none is open.
#[derive(Default)]
struct AtomicBody {
    /// How many of the statement's first words match `create [or replace]
    /// function|procedure` so far; `ROUTINE` once they all do, `NOT` once
    /// one does not.
    head: u8,
    parens: i32,
    depth: usize,
}

const ROUTINE: u8 = 100;
const NOT: u8 = 101;

impl AtomicBody {
    /// A semicolon here does not end the statement: inside a block, or
    /// inside parentheses (psql's `paren_depth`: a multi-action `CREATE
    /// RULE ... DO ALSO (a; b)` is one statement).
    fn open(&self) -> bool {
        self.depth > 0 || self.parens > 0
    }

    fn see(&mut self, t: &Token) {
        match t {
            Token::Punct('(') => self.parens += 1,
            Token::Punct(')') => self.parens = (self.parens - 1).max(0),
            Token::Word(w) if self.head == ROUTINE && self.parens == 0 => match w.as_str() {
                "begin" => self.depth += 1,
                "case" if self.depth > 0 => self.depth += 1,
                "end" if self.depth > 0 => self.depth -= 1,
                _ => {}
            },
            Token::Word(_) if self.head == ROUTINE => {}
            Token::Word(w) if self.head != NOT => {
                self.head = match (self.head, w.as_str()) {
                    (0, "create") => 1,
                    (1, "or") => 2,
                    (2, "replace") => 3,
                    (1 | 3, "function" | "procedure") => ROUTINE,
                    _ => NOT,
                };
            }
            _ if self.head != ROUTINE => self.head = NOT,
            _ => {}
        }
    }
}

/// Like `statements`, but each of `blocks` (byte ranges another tool marks
/// as one statement, e.g. goose `StatementBegin`/`StatementEnd`) is one
/// statement whatever semicolons it holds; the text between blocks is split
/// as usual.
pub fn statements_with_blocks(text: &str, blocks: &[std::ops::Range<usize>]) -> Vec<Statement> {
    if blocks.is_empty() {
        return statements(text);
    }
    let index = LineIndex::new(text);
    let mut blocks = blocks.to_vec();
    blocks.sort_by_key(|b| b.start);
    let mut out = Vec::new();
    let mut gap_start = 0;
    let split_gap = |from: usize, to: usize, out: &mut Vec<Statement>| out.extend(split(&lex(&text[from..to]), from, &index).into_iter().map(|(st, _)| st));
    for b in blocks {
        split_gap(gap_start, b.start.max(gap_start), &mut out);
        let code = &text[b.clone()];
        let start = b.start + (code.len() - code.trim_start().len());
        let end = b.start + code.trim_end().len();
        if end > start {
            out.push(Statement { start, end, line: index.line(start) });
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
    #[cfg(test)]
    work::lexed(sql.len());
    let b = sql.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut out = Vec::with_capacity(b.len() / 8);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let token = if is_space(c) {
            i += 1;
            continue;
        } else if let Some(end) = comment_end(b, i) {
            i = end;
            continue;
        } else if c == b'\'' {
            i = literal_end(b, i + 1, false);
            Token::Literal
        } else if c == b'"' {
            let (text, end) = quoted(b, i, c);
            i = end;
            Token::Quoted(text)
        } else if (c == b'e' || c == b'E') && b.get(i + 1) == Some(&b'\'') {
            i = literal_end(b, i + 2, true);
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

/// The index after the closing quote of a string literal whose text starts
/// at `b[from]` (doubled quotes, and with `backslash` backslash escapes,
/// stay inside); the end of the text when it is not closed.
fn literal_end(b: &[u8], mut from: usize, backslash: bool) -> usize {
    loop {
        let next = if backslash { memchr::memchr2(b'\'', b'\\', &b[from..]) } else { memchr::memchr(b'\'', &b[from..]) };
        let Some(p) = next else { return b.len() };
        let at = from + p;
        if b[at] == b'\\' {
            from = (at + 2).min(b.len());
        } else if b.get(at + 1) == Some(&b'\'') {
            from = at + 2;
        } else {
            return at + 1;
        }
    }
}

/// PostgreSQL's whitespace: space, tab, newline, carriage return, form feed
/// and vertical tab.
pub fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A quoted identifier starting at `b[open]` (the quote): its text with
/// doubled quotes undone, and the index after the closing quote.
fn quoted(b: &[u8], open: usize, q: u8) -> (String, usize) {
    let mut text = Vec::new();
    let mut i = open + 1;
    while i < b.len() {
        if b[i] == q && b.get(i + 1) == Some(&q) {
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
        (Some(b'-'), Some(b'-')) => Some(memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |p| i + p)),
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

/// What the lexer and the line index scanned on this thread, for tests
/// that prove loading and linting are linear without timing anything.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static LEXED: Cell<usize> = const { Cell::new(0) };
        static INDEXED: Cell<usize> = const { Cell::new(0) };
        static INDEXES: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn lexed(bytes: usize) {
        LEXED.with(|c| c.set(c.get() + bytes));
    }

    pub(super) fn indexed(bytes: usize) {
        INDEXED.with(|c| c.set(c.get() + bytes));
        INDEXES.with(|c| c.set(c.get() + 1));
    }

    /// Bytes lexed and bytes indexed, and line indexes built, since the last
    /// call (on this thread); the counters start again from zero.
    pub(crate) fn take() -> (usize, usize, usize) {
        (LEXED.with(|c| c.replace(0)), INDEXED.with(|c| c.replace(0)), INDEXES.with(|c| c.replace(0)))
    }
}

#[cfg(test)]
mod tests;

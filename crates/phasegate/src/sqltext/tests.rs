//! The lexer's and the statement splitter's tests.

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
    let text = "ab\nçd\nef";
    let index = LineIndex::new(text);
    assert_eq!(index.line_col(text, 6), (2, 3));
    assert_eq!(index.line_col(text, 0), (1, 1));
    assert_eq!((index.line(2), index.line(3), index.line(99)), (1, 2, 3));
    assert_eq!(LineIndex::new("").line_col("", 0), (1, 1));
    let trailing = "a\n";
    assert_eq!(LineIndex::new(trailing).line(2), 2, "the offset after a final newline is on the next line");
}

#[test]
fn blocks_run_whole_and_the_rest_is_split() {
    let text = "SELECT 1;\nCREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 2; SELECT 3;\n";
    let start = text.find("CREATE").unwrap();
    let end = text.find("SELECT 2").unwrap();
    let got: Vec<(&str, usize)> = statements_with_blocks(text, std::slice::from_ref(&(start..end))).iter().map(|s| (&text[s.start..s.end], s.line)).collect();
    assert_eq!(got, [("SELECT 1", 1), (text[start..end].trim_end(), 2), ("SELECT 2", 3), ("SELECT 3", 3)]);
    assert_eq!(statements(text).len(), 4, "without the block too: its inner semicolons sit inside parentheses, as psql splits");
}

#[test]
fn semicolons_inside_parentheses_stay_in_their_statement() {
    let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (\n  INSERT INTO a VALUES (1);\n  INSERT INTO b VALUES (2)\n);\nSELECT 1); SELECT 2;";
    let st = statements(sql);
    assert_eq!(st.iter().map(|s| s.line).collect::<Vec<_>>(), vec![1, 5, 5], "an unbalanced `)` closes nothing: {st:?}");
}

#[test]
fn a_sql_standard_function_body_is_part_of_its_create_statement() {
    let text = "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a ELSE 0 END;\n  SELECT a + b;\nEND;\nCREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;\nSELECT 3;";
    let got: Vec<(&str, usize)> = statements(text).iter().map(|s| (&text[s.start..s.end], s.line)).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].0.starts_with("CREATE FUNCTION") && got[0].0.ends_with("END"), "{got:?}");
    assert_eq!((got[1].1, got[2]), (6, ("SELECT 3", 7)));
    assert!(got[1].0.ends_with("VALUES (1); END"), "{got:?}");
    // Outside a routine, BEGIN and END are transaction control and split as usual.
    assert_eq!(statements("BEGIN; SELECT CASE WHEN true THEN 1 END; END;").len(), 3);
    // A PL/pgSQL body is a dollar-quoted literal: nothing to count.
    assert_eq!(statements("CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; SELECT 1").len(), 2);
    // Parameters named like keywords (inside parentheses) open nothing.
    assert_eq!(statements("CREATE FUNCTION f(begin int) RETURNS int RETURN 1; SELECT 1").len(), 2);
}

#[test]
fn splitting_builds_one_line_index_whatever_the_statement_count() {
    let text = |n: usize| "INSERT INTO t VALUES (1, 'a;b');\n".repeat(n);
    for n in [10, 1000] {
        let t = text(n);
        work::take();
        assert_eq!(statements(&t).len(), n);
        let (lexed, indexed, indexes) = work::take();
        assert_eq!((lexed, indexed, indexes), (t.len(), t.len(), 1), "one pass of each over {n} statements");
    }
}

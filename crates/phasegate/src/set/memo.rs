//! What a SQL file's text gives that costs a lexer pass or a hash to work
//! out, kept with the file: a fleet applies the same files to every
//! database, and recording a migration needs its checksums each time
//! (lexing, SHA-256 and refinery's checksum were about a tenth of a fleet
//! runner's CPU per database before). Each value is kept with the text it
//! came from and used only while the file's text is still that text (the
//! fields of `SqlFile` are public, and a reader may rewrite a file's text
//! after reading its statements).

use std::ops::Range;
use std::sync::OnceLock;

use crate::sqltext::Statement;

/// A value with the key it was worked out for.
type Kept<K, V> = OnceLock<(K, V)>;

#[derive(Clone, Default)]
pub(crate) struct Memo {
    /// By text and blocks.
    statements: Kept<(String, Vec<Range<usize>>), Vec<Statement>>,
    /// By text.
    sha256: Kept<String, String>,
    /// By file stem and text.
    refinery: Kept<(String, String), u64>,
    /// Whether the text holds transaction control, by text.
    tx_control: Kept<String, bool>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

impl Memo {
    pub(crate) fn statements(&self, text: &str, blocks: &[Range<usize>], work: impl FnOnce() -> Vec<Statement>) -> Vec<Statement> {
        kept(&self.statements, |(t, b)| t == text && b == blocks, || (text.to_string(), blocks.to_vec()), work)
    }

    pub(crate) fn sha256(&self, text: &str, work: impl FnOnce() -> String) -> String {
        kept(&self.sha256, |t| t == text, || text.to_string(), work)
    }

    pub(crate) fn refinery(&self, stem: &str, text: &str, work: impl FnOnce() -> u64) -> u64 {
        kept(&self.refinery, |(n, t)| n == stem && t == text, || (stem.to_string(), text.to_string()), work)
    }

    pub(crate) fn tx_control(&self, text: &str, work: impl FnOnce() -> bool) -> bool {
        kept(&self.tx_control, |t| t == text, || text.to_string(), work)
    }
}

/// The value `cell` keeps, when its key is the one asked for (`is`);
/// else worked out, and kept with its key (`key`) the first time only (a
/// rewritten text is worked out again each time).
fn kept<K, V: Clone>(cell: &Kept<K, V>, is: impl FnOnce(&K) -> bool, key: impl FnOnce() -> K, work: impl FnOnce() -> V) -> V {
    match cell.get() {
        Some((k, v)) if is(k) => v.clone(),
        Some(_) => work(),
        None => cell.get_or_init(|| (key(), work())).1.clone(),
    }
}

#[cfg(test)]
mod tests {
    use crate::set::{Directives, SqlFile};

    #[test]
    fn a_rewritten_text_is_worked_out_again() {
        let mut f = SqlFile::new("m.sql".into(), "SELECT 1; SELECT 2;".into(), Directives::default());
        assert_eq!(f.statements().len(), 2);
        let first = f.sha256();
        assert_eq!(f.sha256(), first, "kept");
        f.text = "SELECT 1;".into();
        assert_eq!(f.statements().len(), 1, "not the statements of the old text");
        assert_ne!(f.sha256(), first, "nor its checksum");
        assert_eq!(f.sha256(), crate::set::sha256_hex("SELECT 1;"));
        f.text = "SELECT 1; SELECT 2;".into();
        assert_eq!(f.statements().len(), 2);
        // A block is sent whole: one statement once the blocks say so.
        f.directives.blocks = std::iter::once(0..19).collect();
        assert_eq!(f.statements().len(), 1, "not the statements of the old blocks");
    }
}

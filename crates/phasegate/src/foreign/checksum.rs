//! The checksum each tool keeps in its ledger for a migration file, computed
//! as the tool computes it, so `migrate --adopt` can tell a file changed
//! after the tool ran it:
//!
//! * sqlx: SHA-384 of the file's text (`_sqlx_migrations.checksum`, bytea;
//!   here in hex);
//! * Flyway: CRC-32 over the UTF-8 bytes of each line without its line
//!   break (Java's `BufferedReader.readLine`: `\n`, `\r\n` or `\r`), a BOM
//!   dropped from the first line, stored as a signed 32-bit integer
//!   (`flyway_schema_history.checksum`; Flyway's `ChecksumCalculator`);
//! * Sqitch: SHA-1 of the deploy file's raw bytes, hex
//!   (`sqitch.changes.script_hash`; `App::Sqitch::Plan::Change::script_hash`).
//!
//! * refinery: its own `Migration::checksum` (SipHash of the name, version
//!   and text), computed by the refinery crate phasegate links.
//!
//! diesel, golang-migrate, goose and dbmate keep none. Liquibase's `md5sum`
//! is computed over its normalised changeset model (version prefix `9:`),
//! which phasegate does not rebuild: it is not compared (the adoption says
//! so).

use std::path::Path;

use sha1::Digest as _;

use super::Layout;

/// Whether phasegate computes the tool's checksum.
pub(crate) fn computed(tool: Layout) -> bool {
    matches!(tool, Layout::Sqlx | Layout::Flyway | Layout::Sqitch | Layout::Refinery)
}

/// The tool's checksum of the file at `path` holding `bytes`, `None` when
/// it keeps none (or phasegate does not compute it: see [`not_compared`]).
pub(crate) fn of(tool: Layout, path: &Path, bytes: &[u8]) -> Option<String> {
    match tool {
        Layout::Sqlx => Some(hex(&sha2::Sha384::digest(bytes))),
        Layout::Flyway => Some(flyway(bytes).to_string()),
        Layout::Sqitch => Some(hex(&sha1::Sha1::digest(bytes))),
        Layout::Refinery => {
            let name = path.file_stem()?.to_str()?;
            let text = std::str::from_utf8(bytes).ok()?;
            refinery::Migration::unapplied(name, text).ok().map(|m| m.checksum().to_string())
        }
        _ => None,
    }
}

/// Why a tool's checksums are not compared, for one that keeps some.
pub fn not_compared(tool: Layout) -> Option<&'static str> {
    match tool {
        Layout::Liquibase => Some("Liquibase's md5sum is computed over its normalised changeset, which phasegate does not rebuild: checksums are not compared"),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Flyway's checksum: CRC-32 of the lines' bytes, line breaks left out.
fn flyway(bytes: &[u8]) -> i32 {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut h = crc32fast::Hasher::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(rest.len());
        h.update(&rest[..end]);
        rest = &rest[end..];
        if rest.starts_with(b"\r\n") {
            rest = &rest[2..];
        } else if !rest.is_empty() {
            rest = &rest[1..];
        }
    }
    h.finalize() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flyway_ignores_line_breaks_and_a_bom() {
        let a = flyway(b"CREATE TABLE a (x int);\nSELECT 1;\n");
        assert_eq!(a, flyway(b"CREATE TABLE a (x int);\r\nSELECT 1;"));
        assert_eq!(a, flyway("\u{feff}CREATE TABLE a (x int);\rSELECT 1;\r\n".as_bytes()));
        assert_ne!(a, flyway(b"CREATE TABLE a (x bigint);\nSELECT 1;\n"));
        assert_eq!(flyway(b"abc\n"), 0x352441c2_u32 as i32, "CRC-32 of `abc`");
    }

    #[test]
    fn sqlx_and_sqitch_hash_the_bytes() {
        assert_eq!(of(Layout::Sqitch, Path::new("x"), b"abc").unwrap(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(of(Layout::Sqlx, Path::new("x"), b"abc").unwrap().starts_with("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"));
        let refinery = of(Layout::Refinery, Path::new("V2__b.sql"), b"SELECT 1;").unwrap();
        assert_eq!(refinery, refinery::Migration::unapplied("V2__b", "SELECT 1;").unwrap().checksum().to_string());
        assert!(of(Layout::Goose, Path::new("x"), b"abc").is_none() && of(Layout::Liquibase, Path::new("x"), b"abc").is_none());
    }
}

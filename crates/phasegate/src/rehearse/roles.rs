//! Roles a rehearsal may create. Roles are cluster-wide: a migration's
//! `CREATE ROLE app` outlives the rehearsal's databases, and the next
//! rehearsal on the same server fails at that migration ("role already
//! exists"). The caller lists the server's roles before the rehearsal and
//! drops, after it, those that appeared since *and* that the rehearsed SQL
//! names in a `CREATE ROLE | USER | GROUP` (also inside `DO` bodies), so a
//! role another session creates meanwhile on a shared server is left alone.

use std::collections::BTreeSet;

use crate::set::{MigrationSet, SqlFile};

/// The role names `CREATE ROLE`, `CREATE USER` and `CREATE GROUP` name in
/// `text`, as PostgreSQL stores them (unquoted names lowercased).
pub fn created_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("create") {
        let at = from + i;
        from = at + "create".len();
        if at > 0 && is_ident_char(lower.as_bytes()[at - 1]) {
            continue;
        }
        let rest = &text[from..];
        let Some(kind_start) = rest.find(|c: char| !c.is_whitespace()) else { break };
        if kind_start == 0 {
            continue;
        }
        let rest = &rest[kind_start..];
        let kind_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        if !matches!(rest[..kind_len].to_ascii_lowercase().as_str(), "role" | "user" | "group") {
            continue;
        }
        let kind = &rest[..kind_len];
        let rest = &rest[kind_len..];
        let Some(name_start) = rest.find(|c: char| !c.is_whitespace()) else { break };
        if name_start == 0 {
            continue;
        }
        match ident(&rest[name_start..]) {
            // CREATE USER MAPPING is no role.
            Some(name) if name == "mapping" && kind.eq_ignore_ascii_case("user") => {}
            Some(name) => {
                out.insert(name);
            }
            None => {}
        }
    }
    out
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// The identifier at the start of `s`: `"Quoted ""name"""` as written, a
/// bare name lowercased.
fn ident(s: &str) -> Option<String> {
    if let Some(q) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = q.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    name.push('"');
                } else {
                    return (!name.is_empty()).then_some(name);
                }
            } else {
                name.push(c);
            }
        }
        return None;
    }
    let len = s.bytes().take_while(|b| is_ident_char(*b)).count();
    (len > 0 && !s.as_bytes()[0].is_ascii_digit()).then(|| s[..len].to_ascii_lowercase())
}

/// Every role the set's forward and rollback files and the setup files
/// may create.
pub fn created_by(set: &MigrationSet, setup: &[SqlFile]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let files = set.phases.iter().flat_map(|p| &p.steps).flat_map(|s| std::iter::once(&s.forward).chain(s.rollback.as_ref()));
    for f in files.chain(setup) {
        out.extend(created_in(&f.text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &str) -> Vec<String> {
        created_in(t).into_iter().collect()
    }

    #[test]
    fn create_role_user_and_group_are_found() {
        assert_eq!(names("CREATE ROLE app_ro LOGIN;\ncreate user Reporting;\nCREATE GROUP \"Ops Team\";"), ["Ops Team", "app_ro", "reporting"]);
        assert_eq!(names("DO $$ BEGIN CREATE ROLE app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"), ["app"]);
        assert_eq!(names("CREATE TABLE role (x int); CREATE USER MAPPING FOR x SERVER s; recreate role z"), Vec::<String>::new(), "only what follows CREATE ROLE|USER|GROUP");
        assert!(names("GRANT SELECT ON t TO app; CREATE ROLE").is_empty());
    }
}

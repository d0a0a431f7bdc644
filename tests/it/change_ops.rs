//! `change` for constraints, indexes and tables (add-check, add-unique,
//! add-foreign-key, drop-constraint, rename-constraint, create-index,
//! drop-index, create-table, rename-table, drop-table): each generated on
//! the seeded shop fixture, then `lint` finds nothing, `verify` restores
//! every reversible phase, the walk runs each probe where it must work
//! (after each migrate, rollback and re-apply) and `recover` brings back
//! what a cleanup dropped. And bad input: one line, exit 1, nothing written.

use crate::change::{both_versions_write, change, generated, lint_finds_nothing, listing, proves, verify_restores, walk, Expect};
use crate::harness::{copy_set, fixture};

const SHOP: &str = "change_shop";

/// The text of every forward file of the set in `dir`, in order.
fn forward_sql(dir: &std::path::Path) -> String {
    let set = phasegate::load_set(dir).unwrap();
    set.steps().map(|s| s.forward.text.clone()).collect()
}

#[test]
fn add_check_is_added_not_valid_then_validated() {
    let dir = proves(
        SHOP,
        &["add-check", "orders", "orders_amount_small", "amount < 100000"],
        Expect { kept: "SELECT ''", after: &["SELECT 1 - count(*) FROM pg_constraint WHERE conname = 'orders_amount_small' AND convalidated"] },
    );
    let sql = forward_sql(dir.path());
    assert!(sql.contains("ADD CONSTRAINT orders_amount_small CHECK (amount < 100000) NOT VALID;") && sql.contains("VALIDATE CONSTRAINT orders_amount_small;"), "{sql}");
}

#[test]
fn add_unique_builds_the_index_concurrently_and_attaches_it() {
    let dir = proves(
        SHOP,
        &["add-unique", "accounts.phone"],
        Expect { kept: "SELECT ''", after: &["SELECT 1 - count(*) FROM pg_constraint WHERE conname = 'accounts_phone_key' AND contype = 'u'"] },
    );
    let sql = forward_sql(dir.path());
    assert!(sql.contains("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_phone_key ON accounts (phone);"), "{sql}");
    assert!(sql.contains("ADD CONSTRAINT accounts_phone_key UNIQUE USING INDEX accounts_phone_key;"), "{sql}");
}

/// Two changes in flight: the foreign key is dropped (in steps its rollback
/// retraces), then added back with ON DELETE CASCADE (NOT VALID, validated).
#[test]
fn drop_constraint_then_add_foreign_key() {
    let dir = generated(SHOP, &["drop-constraint", "orders", "orders_account_id_fkey"]);
    change(dir.path(), &["add-foreign-key", "orders.account_id", "accounts.id", "--on-delete", "cascade"]).expect_exit(0);
    lint_finds_nothing(dir.path());
    verify_restores(dir.path());
    walk(SHOP, dir.path(), Expect { kept: "SELECT ''", after: &["SELECT 1 - count(*) FROM pg_constraint WHERE conname = 'orders_account_id_fkey' AND convalidated AND confdeltype = 'c'"] });
    let sql = forward_sql(dir.path());
    assert!(sql.contains("ADD CONSTRAINT orders_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE NOT VALID;"), "{sql}");
}

#[test]
fn drop_constraint_of_a_unique_key_rebuilds_its_index_on_rollback() {
    let dir = proves(SHOP, &["drop-constraint", "accounts", "accounts_email_key"], Expect { kept: "SELECT ''", after: &["SELECT count(*) FROM pg_class WHERE relname = 'accounts_email_key'"] });
    let rollback = std::fs::read_to_string(dir.path().join("rollback/V3__drop_constraint_accounts_email_key_drop_index.sql")).unwrap();
    assert!(rollback.starts_with("-- phasegate: no-transaction\n") && rollback.contains("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_key ON"), "{rollback}");
}

#[test]
fn drop_and_rename_a_check() {
    proves(SHOP, &["drop-constraint", "accounts", "accounts_full_name_check"], Expect { kept: "SELECT ''", after: &["SELECT count(*) FROM pg_constraint WHERE conname = 'accounts_full_name_check'"] });
    proves(
        SHOP,
        &["rename-constraint", "orders", "orders_amount_check", "orders_amount_not_negative"],
        Expect { kept: "SELECT ''", after: &["SELECT 1 - count(*) FROM pg_constraint WHERE conname = 'orders_amount_not_negative' AND convalidated"] },
    );
}

#[test]
fn create_index_concurrently_plain_and_unique_partial() {
    let plain = proves(SHOP, &["create-index", "orders", "(channel, kind)"], Expect { kept: "SELECT ''", after: &["SELECT 1 - count(*) FROM pg_index WHERE indexrelid = to_regclass('orders_channel_kind_idx') AND indisvalid"] });
    let set = phasegate::load_set(plain.path()).unwrap();
    assert_eq!(set.phases.last().unwrap().name, "create-index orders (channel, kind): index", "the keys' parentheses once");
    let dir = proves(
        SHOP,
        &["create-index", "accounts", "lower(nickname)", "--unique", "--where", "status = 'active'", "--name", "accounts_active_nickname_key"],
        Expect { kept: "SELECT ''", after: &["SELECT 1 - count(*) FROM pg_index WHERE indexrelid = to_regclass('accounts_active_nickname_key') AND indisunique AND indpred IS NOT NULL"] },
    );
    let sql = forward_sql(dir.path());
    assert!(sql.contains("-- phasegate: no-transaction\n") && sql.contains("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_active_nickname_key ON accounts (lower(nickname)) WHERE status = 'active';"), "{sql}");
}

#[test]
fn drop_index_concurrently_and_its_rollback_builds_it_again() {
    let dir = proves(SHOP, &["drop-index", "accounts_full_name_idx"], Expect { kept: "SELECT ''", after: &["SELECT count(*) FROM pg_class WHERE relname = 'accounts_full_name_idx'"] });
    let rollback = std::fs::read_to_string(dir.path().join("rollback/V2__drop_index_accounts_full_name_idx_drop_index.sql")).unwrap();
    assert!(rollback.contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_full_name_idx ON public.accounts USING btree (lower(full_name));"), "{rollback}");
}

#[test]
fn create_table_with_a_foreign_key_and_a_probe_of_the_new_version() {
    let dir = proves(
        SHOP,
        &["create-table", "coupons", "(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, code text NOT NULL UNIQUE, account_id bigint REFERENCES accounts (id), percent integer NOT NULL DEFAULT 10)"],
        Expect { kept: "SELECT ''", after: &["SELECT count(*) FROM coupons"] },
    );
    let set = phasegate::load_set(dir.path()).unwrap();
    assert_eq!(set.probes.len(), 1, "the old version does not know the table");
    assert!(set.probes[0].file.text.contains("INSERT INTO coupons (code, account_id, percent) VALUES ('probe', (SELECT id FROM accounts ORDER BY id LIMIT 1), 1);"), "{}", set.probes[0].file.text);
}

#[test]
fn rename_table_keeps_the_old_name_as_a_view_during_the_window() {
    let dir = proves(SHOP, &["rename-table", "orders", "purchases"], Expect { kept: "SELECT ''", after: &["SELECT count(*) FROM pg_class WHERE relname = 'orders'", "SELECT 4000 - count(*) FROM purchases"] });
    let set = phasegate::load_set(dir.path()).unwrap();
    let (old, new) = (&set.probes[0], &set.probes[1]);
    assert_eq!((old.from, old.until, new.from, new.until), (0, Some(1), 1, None));
    assert!(old.file.text.contains("INSERT INTO orders") && new.file.text.contains("INSERT INTO purchases"));
}

/// During the window the old version writes through the view, the new
/// one through the table: the same rows, and all of them survive the cleanup.
#[test]
fn both_versions_write_through_a_renamed_table() {
    both_versions_write(
        SHOP,
        &["rename-table", "orders", "purchases"],
        "UPDATE orders SET amount = 321 WHERE id = 1;
         UPDATE purchases SET amount = 12 WHERE id = 2;
         DELETE FROM orders WHERE id = 3;
         INSERT INTO orders (account_id, amount, kind, channel) VALUES (1, 77, 'WEB', 'old-app');
         INSERT INTO purchases (account_id, amount, kind, channel) VALUES (1, 6, 'PHONE', 'new-app');",
        "SELECT count(*) FROM orders o FULL JOIN purchases p USING (id) WHERE o.id IS NULL OR p.id IS NULL OR o.amount <> p.amount",
        &[
            ("SELECT amount::text FROM purchases WHERE id = 1", "321"),
            ("SELECT amount::text FROM purchases WHERE id = 2", "12"),
            ("SELECT count(*)::text FROM purchases WHERE id = 3", "0"),
            ("SELECT string_agg(channel || ':' || amount, ',' ORDER BY id) FROM purchases WHERE channel LIKE '%-app'", "old-app:77,new-app:6"),
        ],
    );
}

#[test]
fn drop_table_is_kept_and_recovered() {
    let dir = proves(SHOP, &["drop-table", "orders"], Expect { kept: "SELECT string_agg(id || ':' || amount || ':' || channel, ',' ORDER BY id) FROM orders", after: &["SELECT count(*) FROM pg_class WHERE relname = 'orders'"] });
    let set = phasegate::load_set(dir.path()).unwrap();
    assert!(!set.phases.last().unwrap().is_reversible());
}

#[test]
fn bad_input_of_constraint_index_and_table_operations_is_one_line_and_writes_nothing() {
    let cases: &[(&[&str], &str)] = &[
        (&["add-check", "orders", "orders_amount_check", "amount > 0"], "constraint `orders_amount_check` already exists on orders"),
        (&["add-check", "orders", "big", "amount > 100"], "check expression `amount > 100` is false on orders row id = "),
        (&["add-check", "orders", "big", "amont > 0"], "check expression `amont > 0`: column \"amont\" does not exist"),
        (&["add-check", "ordrs", "big", "amount > 0"], "no table `ordrs` in the set (phases 0-0 applied to a disposable database); did you mean `orders`?"),
        (&["add-unique", "accounts.status"], "hold the same (status): a unique index would refuse them; make them distinct first"),
        (&["add-unique", "accounts.email"], "add-unique accounts(email): index accounts_email_key makes these columns unique already"),
        (&["add-unique", "accounts.phone,emial"], "table `accounts` has no column `emial`; did you mean `email`?"),
        (&["add-foreign-key", "orders.note", "accounts.email"], "has note = first order, which accounts.email does not hold: the foreign key would refuse it"),
        (&["add-foreign-key", "orders.amount", "accounts.legacy_flags"], "accounts.legacy_flags is neither a primary key nor a unique column"),
        (&["add-foreign-key", "orders.account_id", "accounts.id"], "add-foreign-key orders.account_id: foreign key orders_account_id_fkey does this already"),
        (&["add-foreign-key", "orders.account_id", "accounts.id", "--on-delete", "explode"], "on-delete action `explode`: expected one of: no action, restrict, cascade, set null, set default"),
        (&["create-index", "orders", "(chanel)"], "table `orders` has no column `chanel`; did you mean `channel`?"),
        (&["create-index", "accounts", "status", "--unique"], "hold the same (status): a unique index would refuse them"),
        (&["create-index", "orders", "lower(kind)"], "index keys `lower(kind)`: function lower(order_kind) does not exist"),
        (&["create-index", "orders", "channel", "--name", "accounts_email_key"], "relation `accounts_email_key` already exists"),
        (&["drop-index", "accounts_full_name_ix"], "no index `accounts_full_name_ix` in the set (phases 0-0 applied to a disposable database); did you mean `accounts_full_name_idx`?"),
        (&["drop-index", "accounts_email_key"], "drop-index accounts_email_key: it is the index of constraint accounts_email_key of accounts"),
        (&["create-table", "accounts", "(id int)"], "relation `accounts` already exists"),
        (&["create-table", "coupons", "(id int, code texte)"], "column list `id int, code texte`: type \"texte\" does not exist"),
        (&["rename-table", "orders", "accounts"], "relation `accounts` already exists"),
        (&["rename-table", "ordres", "purchases"], "no table `ordres` in the set (phases 0-0 applied to a disposable database); did you mean `orders`?"),
        (&["drop-table", "accounts"], "drop-table accounts: foreign key orders_account_id_fkey of orders references it"),
        (&["drop-constraint", "accounts", "accounts_email_kye"], "no constraint `accounts_email_kye` on accounts; did you mean `accounts_email_key`?"),
        (&["drop-constraint", "accounts", "accounts_pkey"], "drop-constraint accounts accounts_pkey: change drops checks, unique constraints and foreign keys"),
        (&["rename-constraint", "orders", "orders_amount_check", "accounts_email_key"], "constraint `accounts_email_key` already exists on orders"),
    ];
    let dir = copy_set(&fixture(SHOP));
    let before = listing(dir.path());
    for (args, message) in cases {
        let out = change(dir.path(), args);
        out.expect_exit(1);
        assert!(out.error_line().contains(message), "{args:?}: {}", out.error_line());
        assert_eq!(listing(dir.path()), before, "{args:?} wrote something");
    }
}

//! The copy against real databases: every column, every value, and a
//! target left as it was when the copy is refused or fails.

use std::collections::BTreeSet;

use super::*;
use crate::store::testing::{on_both_backends, TestDatabase};

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    sqlx::any::install_default_drivers();
    format!("sqlite://{}", dir.path().join(name).display())
}

/// Every table's rows as text, in copy order: what must come out of a
/// copy unchanged.
async fn dump(url: &str) -> Vec<(&'static str, Vec<String>)> {
    let mut connection = AnyConnection::connect(url).await.unwrap();
    let mut tables = Vec::new();
    for table in TABLES {
        let rows = sqlx::query(&table.select())
            .fetch_all(&mut connection)
            .await
            .unwrap();
        let rows = rows
            .iter()
            .map(|row| {
                let values: Vec<String> = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, kind))| format!("{:?}", Value::read(row, i, *kind).unwrap()))
                    .collect();
                values.join(" | ")
            })
            .collect();
        tables.push((table.name, rows));
    }
    connection.close().await.unwrap();
    tables
}

/// A source with a row in every table, and values that a careless copy
/// would change: NULLs, an empty blob and one of every byte, the
/// largest and a negative integer, a fraction, quotes and non-ASCII
/// text; orders whose creation order is not their id order; more audit
/// events than one INSERT takes.
async fn filled_source(url: &str) {
    Store::migrate(url).await.unwrap();
    let mut connection = AnyConnection::connect(url).await.unwrap();
    let every_byte: Vec<u8> = (0..=255).collect();
    let statements: Vec<(&str, Vec<Value>)> = vec![
        (
            "INSERT INTO accounts VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                Value::Text(Some("acct-1".into())),
                Value::Text(Some("thumb'print\"1".into())),
                Value::Text(Some(r#"{"kty":"OKP","x":"é✓"}"#.into())),
                Value::Text(Some("[]".into())),
                Value::Integer(None),
                Value::Text(Some("valid".into())),
                Value::Integer(Some(i64::MAX)),
            ],
        ),
        (
            "INSERT INTO certificates VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            vec![
                Value::Text(Some("cert-1".into())),
                Value::Text(Some("order-z".into())),
                Value::Text(Some("acct-1".into())),
                Value::Text(Some("default".into())),
                Value::Text(Some("0a1b".into())),
                Value::Text(Some(r#"["a.example"]"#.into())),
                Value::Text(Some("-----BEGIN CERTIFICATE-----\n…\n".into())),
                Value::Integer(Some(-1)),
                Value::Integer(Some(1_900_000_000)),
                Value::Integer(Some(1_800_000_000)),
                Value::Integer(Some(4)),
                Value::Integer(Some(0)),
                Value::Text(None),
            ],
        ),
        (
            "INSERT INTO vault_certificates VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                                                     $11, $12, $13, $14, $15)",
            vec![
                Value::Text(Some("pki_int".into())),
                Value::Text(Some("3a0f".into())),
                Value::Text(None),
                Value::Text(Some(r#"["b.example"]"#.into())),
                Value::Text(Some("-----BEGIN CERTIFICATE-----\n…\n".into())),
                Value::Integer(Some(1)),
                Value::Integer(Some(2)),
                Value::Integer(None),
                Value::Text(Some("ab".into())),
                Value::Integer(Some(0)),
                Value::Text(Some("order-a".into())),
                Value::Text(Some("acct-1".into())),
                Value::Text(Some("default".into())),
                Value::Text(Some("3a10".into())),
                Value::Integer(Some(3)),
            ],
        ),
    ];
    for (sql, values) in statements {
        let query = values
            .into_iter()
            .fold(sqlx::query(sql), |query, value| value.bind(query));
        query.execute(&mut connection).await.unwrap();
    }
    // Created z first, then a: the copy keeps that order.
    for (id, csr, replaces) in [
        ("order-z", Some(every_byte.clone()), None),
        ("order-a", Some(Vec::new()), Some("cert-1")),
    ] {
        sqlx::query(
            "INSERT INTO orders (id, account_id, profile, status, identifiers, expires_at,
                                 csr, error, created_at, updated_at, replaces)
             VALUES ($1, 'acct-1', 'default', 'valid', '[]', 5, $2, NULL, 1, 2, $3)",
        )
        .bind(id)
        .bind(csr)
        .bind(replaces)
        .execute(&mut connection)
        .await
        .unwrap();
    }
    for sql in [
        "INSERT INTO authorizations VALUES ('authz-1', 'acct-1', 'dns', 'a.example', 1, 'valid', 9, 1)",
        "INSERT INTO order_authorizations VALUES ('order-z', 'authz-1', 0)",
        "INSERT INTO challenges VALUES ('chall-1', 'authz-1', 'http-01', 'tok', 'valid', 3, NULL, 0, 'gone-replica', 42)",
        "INSERT INTO rate_limit_buckets VALUES ('domain:a.example', 0.1, 7, 8)",
        "INSERT INTO audit_events (at, event, record) VALUES (1, 'b', '{\"n\":1}')",
        "INSERT INTO audit_events (at, event, record) VALUES (1, 'a', '{\"n\":2}')",
        // More than one INSERT's worth of rows.
        "INSERT INTO audit_events (at, event, record)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 700)
         SELECT i, 'bulk', 'r' || i FROM n",
    ] {
        sqlx::query(sql).execute(&mut connection).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO eab_keys VALUES ('kid-1', 'default', $1, $2, NULL, 'note', 1, NULL, NULL, 'acct-1', 2)",
    )
    .bind(every_byte.iter().rev().copied().collect::<Vec<u8>>())
    .bind(vec![0u8; 12])
    .execute(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();
}

/// `TABLES` and `NOT_COPIED` name every column of the migrated schema,
/// and each table comes after every table its foreign keys name.
#[tokio::test]
async fn copies_every_column_of_the_schema_parents_first() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "schema.db");
    Store::migrate(&url).await.unwrap();
    let mut connection = AnyConnection::connect(&url).await.unwrap();
    let columns: BTreeSet<String> = sqlx::query_scalar(
        "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let copied: BTreeSet<String> = TABLES
        .iter()
        .flat_map(|t| t.columns.iter().map(|(c, _)| format!("{}.{c}", t.name)))
        .chain(NOT_COPIED.iter().map(|c| c.to_string()))
        .collect();
    assert_eq!(copied, columns);
    let references: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, f.\"table\" FROM sqlite_master m, pragma_foreign_key_list(m.name) f
         WHERE m.type = 'table'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert!(references.len() >= 8, "{references:?}");
    let position = |name: &str| TABLES.iter().position(|t| t.name == name).unwrap();
    for (child, parent) in references {
        assert!(position(&parent) < position(&child), "{child} -> {parent}");
    }
    connection.close().await.unwrap();
}

on_both_backends! {
    /// SQLite into the test's backend and back into SQLite: every row
    /// and value as it was, each table counted.
    async fn a_copy_there_and_back_changes_no_value() {
        let dir = tempfile::tempdir().unwrap();
        let source = sqlite_url(&dir, "source.db");
        filled_source(&source).await;
        let middle = TestDatabase::create().await;
        let copied = copy(&source, middle.url()).await.unwrap();
        let back = sqlite_url(&dir, "back.db");
        assert_eq!(copy(middle.url(), &back).await.unwrap(), copied);
        let rows = |name: &str| copied.iter().find(|t| t.table == name).unwrap().rows;
        assert_eq!((rows("orders"), rows("audit_events"), rows("eab_keys")), (2, 702, 1));
        assert_eq!(copied.len(), TABLES.len());
        let (before, after) = (dump(&source).await, dump(&back).await);
        assert_eq!(before, after);
        assert!(before[2].1[0].contains("order-z"), "{:?}", before[2]);
        assert_eq!(dump(middle.url()).await, before);
    }
}

on_both_backends! {
    /// A target with rows is refused before anything is written; a copy
    /// that fails half-way (a row the target's foreign keys refuse)
    /// leaves the target empty.
    async fn a_target_with_rows_is_refused_and_a_failed_copy_leaves_none() {
        let dir = tempfile::tempdir().unwrap();
        let source = sqlite_url(&dir, "source.db");
        filled_source(&source).await;
        let target = TestDatabase::create().await;
        copy(&source, target.url()).await.unwrap();
        let before = dump(target.url()).await;
        let refused = copy(&source, target.url()).await.unwrap_err();
        assert!(matches!(refused, CopyError::TargetNotEmpty { .. }), "{refused}");
        assert!(refused.to_string().contains("accounts: 1"), "{refused}");
        assert_eq!(dump(target.url()).await, before);

        // SQLite leaves foreign keys unchecked unless told: a challenge
        // of an authorization that does not exist.
        let mut connection = AnyConnection::connect(&source).await.unwrap();
        connection.execute("PRAGMA foreign_keys = OFF").await.unwrap();
        sqlx::query("INSERT INTO challenges VALUES ('orphan', 'gone', 'http-01', 't', 'pending', NULL, NULL, 0, NULL, NULL)")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        let empty = TestDatabase::create().await;
        let failed = copy(&source, empty.url()).await.unwrap_err();
        assert!(matches!(failed, CopyError::Copying { table: "challenges", .. }), "{failed}");
        for (table, rows) in dump(empty.url()).await {
            assert!(rows.is_empty(), "{table} kept {} rows", rows.len());
        }
    }
}

#[tokio::test]
async fn a_source_that_is_missing_or_behind_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let missing = sqlite_url(&dir, "missing.db");
    let target = sqlite_url(&dir, "target.db");
    assert!(matches!(
        copy(&missing, &target).await,
        Err(CopyError::NoSource(_))
    ));
    assert!(!dir.path().join("missing.db").exists());
    let behind = sqlite_url(&dir, "behind.db");
    let mut connection = AnyConnection::connect(&format!("{behind}?mode=rwc"))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE accounts (id TEXT)")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    let refused = copy(&behind, &target).await.unwrap_err().to_string();
    assert!(refused.contains("certgate migrate"), "{refused}");
}

//! The `audit_events` table: rows are only ever inserted (triggers refuse
//! UPDATE and DELETE), one per line of the audit log.

use super::{Store, StoreResult};

impl Store {
    /// Appends one audit record: `record` is its whole JSON line, `event`
    /// its name, `at` its time (unix seconds).
    pub async fn append_audit_event(&self, at: i64, event: &str, record: &str) -> StoreResult<()> {
        let (event, record) = (event.to_owned(), record.to_owned());
        self.write(move |connection| {
            let (event, record) = (event.clone(), record.clone());
            Box::pin(async move {
                sqlx::query("INSERT INTO audit_events (at, event, record) VALUES ($1, $2, $3)")
                    .bind(at)
                    .bind(event)
                    .bind(record)
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Every record, oldest first.
    #[cfg(test)]
    pub(crate) async fn audit_records(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT record FROM audit_events ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::on_both_backends;

    on_both_backends! {
        async fn rows_can_be_added_but_never_changed_or_removed() {
            let (_database, store) = crate::store::testing::temporary().await;
            store
                .append_audit_event(1, "eab_key_revoked", r#"{"event":"eab_key_revoked"}"#)
                .await
                .unwrap();
            for statement in [
                "UPDATE audit_events SET record = '{}'",
                "DELETE FROM audit_events",
            ] {
                let error = store
                    .write(move |connection| {
                        Box::pin(async move {
                            sqlx::query(statement).execute(&mut *connection).await?;
                            Ok(())
                        })
                    })
                    .await
                    .expect_err(statement);
                assert!(
                    error.to_string().contains("append-only"),
                    "{statement}: {error}"
                );
            }
            assert_eq!(
                store.audit_records().await.unwrap(),
                [r#"{"event":"eab_key_revoked"}"#]
            );
        }
    }
}

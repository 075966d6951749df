//! The mark that keeps certgate from asking a CA to sign one order twice.
//!
//! It is set before the signing request leaves and cleared only when the CA
//! says it did not sign; storing the certificate (or failing the order) ends
//! the order's `processing` state and with it the meaning of the mark.

use super::{Store, StoreResult};

impl Store {
    /// Marks a signing attempt for a processing order. False when the order
    /// is not processing or an attempt is already marked.
    pub async fn mark_sign_attempt(&self, order_id: &str, now: i64) -> StoreResult<bool> {
        let order_id = order_id.to_owned();
        self.write(move |connection| {
            let order_id = order_id.clone();
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE orders SET sign_attempted_at = $1
                     WHERE id = $2 AND status = 'processing' AND sign_attempted_at IS NULL",
                )
                .bind(now)
                .bind(order_id)
                .execute(&mut *connection)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// The CA answered that it did not sign: another attempt is safe.
    pub async fn clear_sign_attempt(&self, order_id: &str) -> StoreResult<()> {
        let order_id = order_id.to_owned();
        self.write(move |connection| {
            let order_id = order_id.clone();
            Box::pin(async move {
                sqlx::query("UPDATE orders SET sign_attempted_at = NULL WHERE id = $1")
                    .bind(order_id)
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
    }
}

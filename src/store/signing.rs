//! The mark that keeps certgate from asking a CA to sign one order twice.
//!
//! It is set before the signing request leaves and cleared only when the CA
//! says it did not sign; storing the certificate (or failing the order) ends
//! the order's `processing` state and with it the meaning of the mark.

use super::{Store, StoreResult};

impl Store {
    /// Marks a signing attempt for a processing order whose issuance
    /// `lease_owner` holds. False when the order is not processing, an
    /// attempt is already marked, or another process has claimed the
    /// issuance (this one may no longer start a signing).
    pub async fn mark_sign_attempt(
        &self,
        order_id: &str,
        now: i64,
        lease_owner: &str,
    ) -> StoreResult<bool> {
        let (order_id, owner) = (order_id.to_owned(), lease_owner.to_owned());
        self.write(move |connection| {
            let (order_id, owner) = (order_id.clone(), owner.clone());
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE orders SET sign_attempted_at = $1
                     WHERE id = $2 AND status = 'processing' AND sign_attempted_at IS NULL
                       AND lease_owner = $3",
                )
                .bind(now)
                .bind(order_id)
                .bind(owner)
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

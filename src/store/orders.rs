//! Orders, their authorizations and challenges, and the transitions between
//! their states (RFC 8555 §7.1.6).

use sqlx::Row;
use sqlx::{any::AnyRow, AnyConnection};

use super::{
    Authorization, Challenge, Lease, NewAuthorization, NewOrder, Order, OrderAuthorization, Store,
    StoreError, StoreResult, ValidationOutcome,
};
use crate::protocol::challenge::ChallengeKind;
use crate::protocol::identifier::{Identifier, IdentifierKind};
use crate::protocol::problem::Problem;
use crate::protocol::status::{AuthorizationStatus, ChallengeStatus, OrderStatus};

/// A stored column read back as its type: a value certgate never writes
/// means the row is corrupt. `what` names the column in the message.
fn parse_column<T>(text: &str, parse: fn(&str) -> Option<T>, what: &str) -> StoreResult<T> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{what} {text:?}")))
}

fn problem_column(row: &AnyRow, column: &str) -> StoreResult<Option<Problem>> {
    let text: Option<String> = row.try_get(column)?;
    Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
}

fn challenge_from_row(row: &AnyRow) -> StoreResult<Challenge> {
    Ok(Challenge {
        id: row.try_get("id")?,
        authorization_id: row.try_get("authorization_id")?,
        kind: parse_column(row.try_get("type")?, ChallengeKind::parse, "challenge type")?,
        token: row.try_get("token")?,
        status: parse_column(
            row.try_get("status")?,
            ChallengeStatus::parse,
            "challenge status",
        )?,
        validated_at: row.try_get("validated_at")?,
        error: problem_column(row, "error")?,
    })
}

/// Every unfinished order that needs authorization `authz_id` becomes
/// invalid, with `problem` as its error.
async fn invalidate_orders_of(
    connection: &mut AnyConnection,
    authz_id: &str,
    problem: &Problem,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE orders SET status = 'invalid', error = $1, updated_at = $2
         WHERE status IN ('pending', 'ready')
           AND id IN (SELECT order_id FROM order_authorizations WHERE authorization_id = $3)",
    )
    .bind(serde_json::to_string(problem)?)
    .bind(now)
    .bind(authz_id)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Inserts a new pending authorization and its challenges.
async fn insert_authorization(
    connection: &mut AnyConnection,
    account_id: &str,
    authz: &NewAuthorization,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO authorizations (id, account_id, identifier_type, identifier_value, wildcard, status, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)",
    )
    .bind(&authz.id)
    .bind(account_id)
    .bind(authz.identifier.kind.as_str())
    .bind(&authz.identifier.value)
    .bind(i64::from(authz.wildcard))
    .bind(authz.expires_at)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    // Every challenge in one statement: each statement is a round trip to
    // the database's thread.
    let rows: Vec<String> = (0..authz.challenges.len())
        .map(|row| {
            let first = row * 5 + 1;
            format!(
                "(${}, ${}, ${}, ${}, 'pending', ${})",
                first,
                first + 1,
                first + 2,
                first + 3,
                first + 4
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO challenges (id, authorization_id, type, token, status, position) VALUES {}",
        rows.join(", ")
    );
    let mut insert = sqlx::query(&sql);
    for (position, challenge) in authz.challenges.iter().enumerate() {
        insert = insert
            .bind(&challenge.id)
            .bind(&authz.id)
            .bind(challenge.kind.as_str())
            .bind(&challenge.token)
            .bind(position as i64);
    }
    insert.execute(&mut *connection).await?;
    Ok(())
}

/// pending → valid for authorization `authz_id` with expiry `valid_until`;
/// when this changed it, every pending order whose authorizations are now
/// all valid becomes ready.
async fn authorization_turned_valid(
    connection: &mut AnyConnection,
    authz_id: &str,
    now: i64,
    valid_until: i64,
) -> StoreResult<()> {
    let changed = sqlx::query(
        "UPDATE authorizations SET status = 'valid', expires_at = $1
         WHERE id = $2 AND status = 'pending'",
    )
    .bind(valid_until)
    .bind(authz_id)
    .execute(&mut *connection)
    .await?;
    // Orders follow only a change this validation made.
    if changed.rows_affected() == 1 {
        sqlx::query(
            "UPDATE orders SET status = 'ready', updated_at = $1
             WHERE status = 'pending'
               AND id IN (SELECT order_id FROM order_authorizations WHERE authorization_id = $2)
               AND NOT EXISTS (
                   SELECT 1 FROM order_authorizations oa
                   JOIN authorizations a ON a.id = oa.authorization_id
                   WHERE oa.order_id = orders.id AND a.status != 'valid')",
        )
        .bind(now)
        .bind(authz_id)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Inserts an order with its new authorizations and challenges. An order
/// whose authorizations are all reused is `ready` at once.
pub(super) async fn insert_order(
    connection: &mut AnyConnection,
    order: &NewOrder,
    now: i64,
) -> StoreResult<()> {
    let all_reused = order
        .authorizations
        .iter()
        .all(|a| matches!(a, OrderAuthorization::Reused(_)));
    sqlx::query(
        "INSERT INTO orders (id, account_id, profile, status, identifiers, expires_at,
                             replaces, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&order.id)
    .bind(&order.account_id)
    .bind(&order.profile)
    .bind(if all_reused { "ready" } else { "pending" })
    .bind(serde_json::to_string(&order.identifiers)?)
    .bind(order.expires_at)
    .bind(&order.replaces)
    .bind(now)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    for (position, authorization) in order.authorizations.iter().enumerate() {
        let authz_id = match authorization {
            OrderAuthorization::Reused(id) => id,
            OrderAuthorization::New(authz) | OrderAuthorization::ReuseOrNew(authz) => {
                insert_authorization(connection, &order.account_id, authz, now).await?;
                &authz.id
            }
        };
        sqlx::query(
            "INSERT INTO order_authorizations (order_id, authorization_id, position)
             VALUES ($1, $2, $3)",
        )
        .bind(&order.id)
        .bind(authz_id)
        .bind(position as i64)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

impl Store {
    /// The order with its authorizations' ids, in one statement: a row per
    /// authorization, in the order's order (each statement is a round trip
    /// to the database's thread, and orders are read several times per
    /// issuance).
    pub async fn order(&self, id: &str) -> StoreResult<Option<Order>> {
        let rows = sqlx::query(
            "SELECT o.id, o.account_id, o.profile, o.status, o.identifiers, o.expires_at, o.csr,
                    o.error, o.sign_attempted_at, o.replaces, o.created_at, c.id AS certificate_id,
                    oa.authorization_id
             FROM orders o LEFT JOIN certificates c ON c.order_id = o.id
             LEFT JOIN order_authorizations oa ON oa.order_id = o.id
             WHERE o.id = $1 ORDER BY oa.position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let authorization_ids = rows
            .iter()
            .filter_map(|row| row.try_get("authorization_id").transpose())
            .collect::<Result<Vec<String>, _>>()?;
        let identifiers: Vec<Identifier> = serde_json::from_str(row.try_get("identifiers")?)?;
        Ok(Some(Order {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            profile: row.try_get("profile")?,
            status: parse_column(row.try_get("status")?, OrderStatus::parse, "order status")?,
            identifiers,
            expires_at: row.try_get("expires_at")?,
            csr: row.try_get("csr")?,
            error: problem_column(row, "error")?,
            sign_attempted_at: row.try_get("sign_attempted_at")?,
            replaces: row.try_get("replaces")?,
            authorization_ids,
            certificate_id: row.try_get("certificate_id")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    /// One page of an account's order ids, leaving out invalid ones (RFC 8555
    /// §7.1.2.1), in the order they were created
    /// (insertion order: timestamps alone tie within a second).
    pub async fn order_ids_for_account(
        &self,
        account_id: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE account_id = $1 AND status != 'invalid'
             ORDER BY rowid LIMIT $2 OFFSET $3",
        )
        .bind(account_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The profile of the (first) order an authorization was made for.
    pub async fn authorization_profile(
        &self,
        authorization_id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT o.profile FROM order_authorizations oa JOIN orders o ON o.id = oa.order_id
             WHERE oa.authorization_id = $1 ORDER BY o.created_at LIMIT 1",
        )
        .bind(authorization_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The authorization with its challenges, in one statement: a row per
    /// challenge, in the authorization's order (a round trip fewer; see
    /// [`Store::order`]).
    pub async fn authorization(&self, id: &str) -> StoreResult<Option<Authorization>> {
        self.authorization_where("a.id = $1", id).await
    }

    /// The authorization that challenge `challenge_id` belongs to, with
    /// its challenges (that one among them), in one statement.
    pub async fn authorization_of_challenge(
        &self,
        challenge_id: &str,
    ) -> StoreResult<Option<Authorization>> {
        self.authorization_where(
            "a.id = (SELECT authorization_id FROM challenges WHERE id = $1)",
            challenge_id,
        )
        .await
    }

    /// The authorization chosen by `condition` (on `a`, binding `$1`).
    async fn authorization_where(
        &self,
        condition: &str,
        value: &str,
    ) -> StoreResult<Option<Authorization>> {
        let rows = sqlx::query(&format!(
            "SELECT a.id AS authz_id, a.account_id, a.identifier_type, a.identifier_value,
                    a.wildcard, a.status AS authz_status, a.expires_at,
                    c.id, c.authorization_id, c.type, c.token, c.status, c.validated_at, c.error
             FROM authorizations a LEFT JOIN challenges c ON c.authorization_id = a.id
             WHERE {condition} ORDER BY c.position"
        ))
        .bind(value)
        .fetch_all(&self.pool)
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let mut challenges = Vec::with_capacity(rows.len());
        for challenge in &rows {
            if challenge.try_get::<Option<String>, _>("id")?.is_some() {
                challenges.push(challenge_from_row(challenge)?);
            }
        }
        Ok(Some(Authorization {
            id: row.try_get("authz_id")?,
            account_id: row.try_get("account_id")?,
            identifier: Identifier {
                kind: parse_column(
                    row.try_get("identifier_type")?,
                    IdentifierKind::parse,
                    "identifier type",
                )?,
                value: row.try_get("identifier_value")?,
            },
            wildcard: row.try_get::<i64, _>("wildcard")? != 0,
            status: parse_column(
                row.try_get("authz_status")?,
                AuthorizationStatus::parse,
                "authorization status",
            )?,
            expires_at: row.try_get("expires_at")?,
            challenges,
        }))
    }

    pub async fn challenge(&self, id: &str) -> StoreResult<Option<Challenge>> {
        let row = sqlx::query(
            "SELECT id, authorization_id, type, token, status, validated_at, error
             FROM challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(challenge_from_row).transpose()
    }

    /// pending → processing, only while the authorization is pending and
    /// unexpired, taking `lease` on the validation. True when this caller
    /// won and must run the validation.
    pub async fn start_challenge(&self, id: &str, now: i64, lease: &Lease) -> StoreResult<bool> {
        let (id, lease) = (id.to_owned(), lease.clone());
        self.write(move |connection| {
            let (id, lease) = (id.clone(), lease.clone());
            Box::pin(async move {
                // One validation per authorization at a time (as Boulder and
                // Pebble do): two racing methods could otherwise each decide
                // the outcome.
                let done = sqlx::query(
                    "UPDATE challenges SET status = 'processing', lease_owner = $3, lease_until = $4
                     WHERE id = $1 AND status = 'pending'
                       AND EXISTS (SELECT 1 FROM authorizations a
                                   WHERE a.id = challenges.authorization_id
                                     AND a.status = 'pending' AND a.expires_at > $2)
                       AND NOT EXISTS (SELECT 1 FROM challenges sibling
                                       WHERE sibling.authorization_id = challenges.authorization_id
                                         AND sibling.status = 'processing')",
                )
                .bind(id)
                .bind(now)
                .bind(lease.owner)
                .bind(lease.until)
                .execute(&mut *connection)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Records a validation result and carries it up: the challenge's
    /// authorization becomes valid or invalid, and every order waiting on it
    /// becomes ready (when all its authorizations are valid) or invalid.
    /// `valid_until` is the expiry a newly valid authorization gets. Only
    /// the holder of the validation's lease, `lease_owner`, may record it:
    /// a process whose lease another claimed was not the one validating.
    pub async fn finish_challenge(
        &self,
        id: &str,
        outcome: &ValidationOutcome,
        now: i64,
        valid_until: i64,
        lease_owner: &str,
    ) -> StoreResult<bool> {
        let (id, outcome, owner) = (id.to_owned(), outcome.clone(), lease_owner.to_owned());
        self.write(move |connection| {
            let (id, outcome, owner) = (id.clone(), outcome.clone(), owner.clone());
            Box::pin(async move {
                let (status, error) = match &outcome {
                    ValidationOutcome::Valid => ("valid", None),
                    ValidationOutcome::Invalid(problem) => {
                        ("invalid", Some(serde_json::to_string(problem)?))
                    }
                };
                let done = sqlx::query(
                    "UPDATE challenges SET status = $1, validated_at = $2, error = $3,
                                           lease_owner = NULL, lease_until = NULL
                     WHERE id = $4 AND status = 'processing' AND lease_owner = $5",
                )
                .bind(status)
                .bind(matches!(outcome, ValidationOutcome::Valid).then_some(now))
                .bind(&error)
                .bind(&id)
                .bind(owner)
                .execute(&mut *connection)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                let authz_id: String =
                    sqlx::query_scalar("SELECT authorization_id FROM challenges WHERE id = $1")
                        .bind(&id)
                        .fetch_one(&mut *connection)
                        .await?;
                match &outcome {
                    ValidationOutcome::Valid => {
                        authorization_turned_valid(connection, &authz_id, now, valid_until).await?
                    }
                    ValidationOutcome::Invalid(problem) => {
                        let changed = sqlx::query(
                            "UPDATE authorizations SET status = 'invalid'
                             WHERE id = $1 AND status = 'pending'",
                        )
                        .bind(&authz_id)
                        .execute(&mut *connection)
                        .await?;
                        if changed.rows_affected() == 1 {
                            invalidate_orders_of(connection, &authz_id, problem, now).await?;
                        }
                    }
                }
                Ok(true)
            })
        })
        .await
    }

    /// pending|valid → deactivated (RFC 8555 §7.5.2); orders that still needed
    /// the authorization become invalid, with `why` as their error.
    pub async fn deactivate_authorization(
        &self,
        id: &str,
        why: &Problem,
        now: i64,
    ) -> StoreResult<bool> {
        let (id, why) = (id.to_owned(), why.clone());
        self.write(move |connection| {
            let (id, problem) = (id.clone(), why.clone());
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE authorizations SET status = 'deactivated'
                     WHERE id = $1 AND status IN ('pending', 'valid')",
                )
                .bind(&id)
                .execute(&mut *connection)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                invalidate_orders_of(connection, &id, &problem, now).await?;
                Ok(true)
            })
        })
        .await
    }

    /// processing → invalid, with the reason for the client.
    pub async fn fail_order(
        &self,
        order_id: &str,
        problem: &Problem,
        now: i64,
    ) -> StoreResult<bool> {
        let (order_id, problem) = (order_id.to_owned(), serde_json::to_string(problem)?);
        self.write(move |connection| {
            let (order_id, problem) = (order_id.clone(), problem.clone());
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE orders SET status = 'invalid', error = $1, updated_at = $2,
                                       lease_owner = NULL, lease_until = NULL
                     WHERE id = $3 AND status = 'processing'",
                )
                .bind(problem)
                .bind(now)
                .bind(order_id)
                .execute(&mut *connection)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }
}

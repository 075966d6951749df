//! Stores for the unit tests of the store and of the layers above, on
//! SQLite or on PostgreSQL. [`on_both_backends!`] turns one test body into
//! two tests, `<name>::sqlite` and `<name>::postgres`; inside, [`temporary`]
//! and [`with_account`] open a fresh database of the backend the test runs
//! on. Without a PostgreSQL server the `postgres` half says loudly that it
//! did not run (see `certgate_testkit::postgres`).

use std::future::Future;

use certgate_testkit::postgres::TemporaryDatabase;

use super::{
    Backend, NewAccount, NewAuthorization, NewChallenge, NewOrder, OrderAuthorization, Store,
};
use crate::config::rate_limits::OrderLimits;
use crate::protocol::challenge::ChallengeKind;
use crate::protocol::identifier::Identifier;

tokio::task_local! {
    /// The backend of the test running on this task.
    static BACKEND: Backend;
}

/// One test's database, removed when dropped.
pub(crate) enum TestDatabase {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres(TemporaryDatabase),
}

impl TestDatabase {
    /// A new empty database of the backend the test runs on (SQLite
    /// outside [`on`]).
    pub(crate) async fn create() -> Self {
        match BACKEND
            .try_with(|backend| *backend)
            .unwrap_or(Backend::Sqlite)
        {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("t.db").display());
                Self::Sqlite { _dir: dir, url }
            }
            Backend::Postgres => Self::Postgres(
                TemporaryDatabase::create("store test")
                    .await
                    .expect("PostgreSQL answered when the test began"),
            ),
        }
    }

    pub(crate) fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } => url,
            Self::Postgres(database) => database.url(),
        }
    }
}

/// A fresh store of the test's backend, with its database.
pub(crate) async fn temporary() -> (TestDatabase, Store) {
    let database = TestDatabase::create().await;
    let store = Store::open(database.url()).await.unwrap();
    (database, store)
}

/// [`temporary`] with one valid account, `id`, created at `now`.
pub(crate) async fn with_account(id: &str, now: i64) -> (TestDatabase, Store) {
    let (database, store) = temporary().await;
    let new = NewAccount {
        key_thumbprint: format!("thumbprint of {id}"),
        jwk: serde_json::json!({"kty": "OKP"}),
        contact: Vec::new(),
        tos_agreed: Some(true),
    };
    store.create_account(id, &new, now).await.unwrap();
    (database, store)
}

/// A pending order `id` of account `acct` for the name `<id>.test`, made
/// at `now` and good for an hour, with one authorization `authz-<id>` of
/// one HTTP-01 challenge `chall-<id>`.
pub(crate) async fn pending_order(store: &Store, id: &str, now: i64) {
    let name = Identifier::from_value(&format!("{id}.test"));
    let order = NewOrder {
        id: id.into(),
        account_id: "acct".into(),
        profile: "default".into(),
        identifiers: vec![name.clone()],
        expires_at: now + 3600,
        authorizations: vec![OrderAuthorization::New(NewAuthorization {
            id: format!("authz-{id}"),
            identifier: name,
            wildcard: false,
            expires_at: now + 3600,
            challenges: vec![NewChallenge {
                id: format!("chall-{id}"),
                kind: ChallengeKind::Http01,
                token: "token".into(),
            }],
        })],
        replaces: None,
    };
    let limits = OrderLimits {
        taken: Vec::new(),
        checked: Vec::new(),
        pending_authorizations: None,
    };
    store
        .create_order_within_limits(&order, &limits, now)
        .await
        .unwrap()
        .unwrap();
}

/// Runs the test `name` on `backend`; on PostgreSQL only where a server
/// answers, noting it as not run otherwise.
pub(crate) async fn on(backend: Backend, name: &str, test: impl Future<Output = ()>) {
    if backend == Backend::Postgres && !certgate_testkit::postgres::available(name).await {
        return;
    }
    BACKEND.scope(backend, test).await
}

/// One test body, run as two tests: `$name::sqlite` and `$name::postgres`.
macro_rules! on_both_backends {
    ($(#[$attribute:meta])* async fn $name:ident() $body:block) => {
        $(#[$attribute])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body() $body

            #[tokio::test]
            async fn sqlite() {
                let name = concat!(module_path!(), "::sqlite");
                $crate::store::testing::on($crate::store::Backend::Sqlite, name, body()).await
            }

            #[tokio::test]
            async fn postgres() {
                let name = concat!(module_path!(), "::postgres");
                $crate::store::testing::on($crate::store::Backend::Postgres, name, body()).await
            }
        }
    };
}
pub(crate) use on_both_backends;

//! newOrder (RFC 8555 §7.4): every check an order must pass, and the one
//! write that takes its rate-limit tokens and stores it.
//!
//! The checks run in the order a client is best served by: the shape of
//! the request, the profile, what the profile's CA would refuse, the
//! account's external binding, the certificate the order replaces, and
//! last the limits: the account's pending authorizations, the per-domain
//! certificate buckets (only checked here: finalize takes their tokens,
//! once the names are validated, so unvalidated orders cannot use up a
//! domain's limit for everyone), and the account's new-order bucket. They
//! are decided in the same store unit of work that creates the order
//! ([`Store::create_order_within_limits`]), as is which valid
//! authorizations the order reuses: a refused or failed order costs the
//! client nothing, every token taken has its order, and the pending
//! authorizations counted are the ones the order really adds.
//!
//! Nothing here knows HTTP or JWS: the handler verifies the request, reads
//! the body and the directory it came through, and turns the result into
//! the response, so these rules can be tested on a store alone.

use std::sync::Arc;
use std::time::Duration;

use super::error::{DomainError, DomainResult};
use super::profiles::{Profile, Profiles};
use crate::audit::{AuditEvent, AuditLog};
use crate::config::rate_limits::RateLimits;
use crate::issuer::IssueError;
use crate::protocol::ari::CertId;
use crate::protocol::challenge::ChallengeKind;
use crate::protocol::identifiers::{check_order_identifiers, OrderedIdentifier};
use crate::protocol::types::NewOrderRequest;
use crate::store::{
    Account, Certificate, NewAuthorization, NewChallenge, NewOrder, Order, OrderAuthorization,
    Store,
};
use crate::util::clock::{seconds_after, Clock};
use crate::util::ids;

/// What newOrder needs, and nothing else; borrowed from whoever holds it.
pub struct Orders {
    pub store: Store,
    pub profiles: Arc<Profiles>,
    pub rate_limits: RateLimits,
    /// How long a new order and its new authorizations stay pending.
    pub pending_lifetime: Duration,
    pub clock: Arc<dyn Clock>,
    pub audit: AuditLog,
}

/// An order newOrder created, as stored, and the time it was created at
/// (the time its view is computed for).
#[derive(Debug)]
pub struct PlacedOrder {
    pub order: Order,
    pub at: i64,
}

impl Orders {
    /// Checks and creates the order `request` asks for on behalf of
    /// `account_id`. `directory_profile` is the profile whose directory the
    /// request came through (`None` for `/acme/directory`); the request's
    /// own `profile` field wins over it. Every refusal is typed; `web`
    /// words it for the client.
    pub async fn place(
        &self,
        account: &Account,
        directory_profile: Option<&str>,
        request: &NewOrderRequest,
    ) -> DomainResult<PlacedOrder> {
        let account_id = account.id.as_str();
        if request.not_before.is_some() || request.not_after.is_some() {
            return Err(DomainError::Malformed(
                "notBefore and notAfter are not supported; the profile decides the validity period"
                    .into(),
            ));
        }
        let names = check_order_identifiers(&request.identifiers)?;
        let profile = self.select_profile(request.profile.as_deref(), directory_profile)?;
        let ordered: Vec<String> = names.iter().map(|n| n.ordered.clone()).collect();
        check_identifiers_allowed(profile, &ordered).await?;
        super::eab::check_new_order(&self.store, account, profile, &names).await?;
        let now = self.clock.now();
        let replaced = self
            .check_replaces(account_id, request.replaces.as_deref(), &names)
            .await?;
        let order = self.new_order(account_id, profile, &names, replaced.as_ref(), now);
        let limits = self.rate_limits.for_order(account_id, &names);
        if let Err(refusal) = self
            .store
            .create_order_within_limits(&order, &limits, now)
            .await?
        {
            tracing::info!(refusal = ?refusal, "new order refused by a limit");
            return Err(DomainError::OrderLimit(refusal));
        }
        // The request's span, when there is one, names the order from here on.
        tracing::Span::current().record("order", order.id.as_str());
        // DEBUG: at `info` a certificate is one line, when it is issued.
        tracing::debug!(order = %order.id, names = ?order.identifiers.iter().map(|i| &i.value).collect::<Vec<_>>(), "order created");
        self.audit
            .record(AuditEvent::OrderCreated {
                order: order.id.clone(),
                account: order.account_id.clone(),
                profile: order.profile.clone(),
                identifiers: order.identifiers.clone(),
                replaces: replaced.map(|c| c.serial),
            })
            .await;
        let stored = self
            .store
            .order(&order.id)
            .await?
            .ok_or_else(|| DomainError::internal("reading a new order", &"order vanished"))?;
        Ok(PlacedOrder {
            order: stored,
            at: now,
        })
    }

    /// The profile an order is for: the one newOrder names (draft-ietf-acme-
    /// profiles), else the one whose directory the client used.
    fn select_profile(
        &self,
        asked: Option<&str>,
        directory: Option<&str>,
    ) -> DomainResult<&Profile> {
        match (asked, directory) {
            (Some(name), _) => self
                .profiles
                .get(name)
                .ok_or_else(|| DomainError::UnknownProfile(name.to_owned())),
            (None, Some(name)) => self
                .profiles
                .get(name)
                .ok_or_else(|| DomainError::UnknownDirectoryProfile(name.to_owned())),
            (None, None) => Ok(self.profiles.default_profile()),
        }
    }

    /// RFC 9773 `replaces`: the certificate must be this account's, share an
    /// identifier with the new order and not be replaced already. Returns the
    /// replaced certificate.
    async fn check_replaces(
        &self,
        account_id: &str,
        replaces: Option<&str>,
        names: &[OrderedIdentifier],
    ) -> DomainResult<Option<Certificate>> {
        let Some(text) = replaces else {
            return Ok(None);
        };
        let cert_id = CertId::parse(text)?;
        let unknown = || DomainError::UnknownReplaced(text.to_owned());
        let certificate = self
            .store
            .certificate_named_by(&cert_id)
            .await?
            .ok_or_else(unknown)?;
        if certificate.account_id != account_id {
            return Err(DomainError::ReplacedNotOwned);
        }
        if !names.iter().any(|n| certificate.names.contains(&n.ordered)) {
            return Err(DomainError::ReplacedSharesNoIdentifier);
        }
        if let Some(order) = self.store.replacing_order(&certificate.id).await? {
            return Err(DomainError::AlreadyReplaced {
                certificate: text.to_owned(),
                order,
            });
        }
        Ok(Some(certificate))
    }

    /// The order to store: for each name, a valid authorization of the same
    /// account and profile is to be reused (so a renewal skips validation),
    /// else a new pending one made with the challenges its name allows; the
    /// store decides which in the write that stores the order.
    fn new_order(
        &self,
        account_id: &str,
        profile: &Profile,
        names: &[OrderedIdentifier],
        replaced: Option<&Certificate>,
        now: i64,
    ) -> NewOrder {
        let pending_until = seconds_after(now, self.pending_lifetime);
        let mut authorizations = Vec::with_capacity(names.len());
        for name in names {
            let identifier = name.as_authorized();
            // Whether a valid authorization is reused instead is decided
            // in the write that stores the order.
            authorizations.push(OrderAuthorization::ReuseOrNew(NewAuthorization {
                id: ids::resource_id(),
                identifier,
                wildcard: name.wildcard,
                expires_at: pending_until,
                challenges: ChallengeKind::offered_for(
                    name.kind,
                    name.wildcard,
                    profile.validation.dns_persist.is_some(),
                )
                .into_iter()
                .map(|kind| NewChallenge {
                    id: ids::resource_id(),
                    kind,
                    token: ids::challenge_token(),
                })
                .collect(),
            }));
        }
        NewOrder {
            id: ids::resource_id(),
            account_id: account_id.to_owned(),
            profile: profile.name.clone(),
            identifiers: names.iter().map(|n| n.as_ordered()).collect(),
            expires_at: pending_until,
            authorizations,
            replaces: replaced.map(|c| c.id.clone()),
        }
    }
}

/// Refuses the order at once when the profile's CA would refuse any of its
/// identifiers, naming each one (like Vault's own ACME server).
async fn check_identifiers_allowed(profile: &Profile, names: &[String]) -> DomainResult<()> {
    let refusals = match profile.issuer.refused_identifiers(names).await {
        Ok(refusals) => refusals,
        Err(IssueError::Unavailable(reason)) => return Err(DomainError::IssuerUnavailable(reason)),
        Err(e) => {
            return Err(DomainError::internal(
                "checking identifiers against the CA",
                &e,
            ))
        }
    };
    if refusals.is_empty() {
        return Ok(());
    }
    Err(DomainError::RefusedIdentifiers(refusals))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::config::rate_limits::Limit;
    use crate::config::AuditLogTarget;
    use crate::issuer::{IdentifierRefusal, IssuedCertificate, Issuer, RevokeRequest, SignRequest};
    use crate::protocol::identifier::Identifier;
    use crate::protocol::problem::{Problem, ProblemType};
    use crate::protocol::status::OrderStatus;
    use crate::store::testing::{on_both_backends, TestDatabase};

    const NOW: i64 = 1_700_000_000;

    struct FixedClock;

    impl Clock for FixedClock {
        fn now(&self) -> i64 {
            NOW
        }
    }

    /// A CA that signs nothing and refuses every name starting `refused.`.
    struct PickyIssuer;

    #[async_trait]
    impl Issuer for PickyIssuer {
        async fn sign(&self, _: &SignRequest) -> Result<IssuedCertificate, IssueError> {
            Err(IssueError::Internal("not in these tests".into()))
        }

        async fn revoke(&self, _: &RevokeRequest) -> Result<(), IssueError> {
            Ok(())
        }

        async fn refused_identifiers(
            &self,
            identifiers: &[String],
        ) -> Result<Vec<IdentifierRefusal>, IssueError> {
            Ok(identifiers
                .iter()
                .filter(|name| name.starts_with("refused."))
                .map(|name| IdentifierRefusal {
                    identifier: name.clone(),
                    reason: "not allowed by the role".into(),
                })
                .collect())
        }

        fn describe(&self) -> String {
            "picky test CA".into()
        }
    }

    /// Everything [`Orders`] borrows, on a store in a temporary directory
    /// with one valid account, `acct`.
    struct Fixture {
        _database: TestDatabase,
        store: Store,
        profiles: Arc<Profiles>,
        rate_limits: RateLimits,
        audit: AuditLog,
    }

    impl Fixture {
        async fn new(per_account: &str, per_domain: &str) -> Self {
            let (dir, store) = crate::store::testing::with_account("acct", NOW).await;
            let profile = Profile {
                name: "default".into(),
                issuer: Arc::new(PickyIssuer),
                ttl: None,
                validation: Default::default(),
                description: String::new(),
                eab: Default::default(),
                renewal_window_start: 2.0 / 3.0,
            };
            Self {
                audit: AuditLog::open(&AuditLogTarget::Off, store.clone()).unwrap(),
                _database: dir,
                store,
                profiles: Arc::new(Profiles::new("default", vec![profile])),
                rate_limits: RateLimits {
                    orders_per_account: Limit::parse(per_account).unwrap(),
                    orders_per_domain: Limit::parse(per_domain).unwrap(),
                    new_accounts_per_ip: None,
                    pending_authorizations_per_account: None,
                },
            }
        }

        fn orders(&self) -> Orders {
            Orders {
                store: self.store.clone(),
                profiles: self.profiles.clone(),
                rate_limits: self.rate_limits,
                pending_lifetime: Duration::from_secs(3600),
                clock: Arc::new(FixedClock),
                audit: self.audit.clone(),
            }
        }

        /// newOrder by `account` for `names`, all at the same instant.
        async fn order(&self, account: &str, names: &[&str]) -> Result<PlacedOrder, Problem> {
            let request = NewOrderRequest {
                identifiers: names
                    .iter()
                    .map(|n| Identifier::from_value(n).into())
                    .collect(),
                profile: None,
                replaces: None,
                not_before: None,
                not_after: None,
            };
            // An account the store does not hold (as a request racing the
            // account's removal would carry) makes the order's write fail.
            let account = self
                .store
                .account(account)
                .await
                .unwrap()
                .unwrap_or_else(|| Account {
                    id: account.to_owned(),
                    key_thumbprint: String::new(),
                    jwk: serde_json::json!({}),
                    contact: Vec::new(),
                    tos_agreed: None,
                    status: crate::protocol::status::AccountStatus::Valid,
                    created_at: 0,
                    binding: None,
                });
            // As the client reads it.
            self.orders()
                .place(&account, None, &request)
                .await
                .map_err(Problem::from)
        }

        async fn stored_orders(&self) -> usize {
            let ids = self.store.order_ids_for_account("acct", 0, 100).await;
            ids.unwrap().len()
        }
    }

    fn refused_by(result: Result<PlacedOrder, Problem>, bucket: &str) {
        let problem = result.unwrap_err();
        assert_eq!(problem.kind, ProblemType::RateLimited, "{problem}");
        assert!(problem.detail.contains(bucket), "{problem}");
    }

    /// What issuing a certificate for `names` takes: a token from each of
    /// their per-domain buckets.
    async fn issued(fixture: &Fixture, names: &[&str]) {
        let names: Vec<OrderedIdentifier> = names
            .iter()
            .map(|n| crate::protocol::identifiers::parse_dns(n).unwrap())
            .collect();
        let buckets = fixture.rate_limits.certificate_buckets(&names);
        fixture
            .store
            .take_tokens(&buckets, NOW)
            .await
            .unwrap()
            .unwrap();
    }

    on_both_backends! {
        async fn an_order_takes_an_account_token_and_only_checks_its_domains() {
            let fixture = Fixture::new("3/1h", "1/1h").await;
            let names = ["a.lab.example", "b.lab.example", "10.0.0.1"];
            let placed = fixture.order("acct", &names).await.unwrap();
            assert_eq!(placed.order.status, OrderStatus::Pending);
            assert_eq!(placed.order.account_id, "acct");
            assert_eq!(placed.order.authorization_ids.len(), 3);
            assert_eq!(placed.at, NOW);
            // Unvalidated orders take nothing from lab.example's single token.
            fixture.order("acct", &names).await.unwrap();
            // A certificate does; then lab.example's orders are refused.
            issued(&fixture, &["a.lab.example"]).await;
            refused_by(fixture.order("acct", &names).await, "domain:lab.example");
            // The account's bucket gave one token to each of the two orders.
            fixture.order("acct", &["c.other.example"]).await.unwrap();
            refused_by(
                fixture.order("acct", &["d.third.example"]).await,
                "account:acct",
            );
            assert_eq!(fixture.stored_orders().await, 3);
            let records = fixture.store.audit_records().await.unwrap();
            assert_eq!(records.len(), 3, "one order_created per order: {records:?}");
            assert!(records
                .iter()
                .all(|r| r.contains(r#""event":"order_created""#)));
        }
    }

    on_both_backends! {
        async fn an_order_refused_by_a_rate_limit_takes_no_token_and_is_not_stored() {
            let fixture = Fixture::new("2/1h", "1/1h").await;
            issued(&fixture, &["a.lab.example"]).await;
            // lab.example is empty; the account's bucket, still holding its
            // tokens, must keep them.
            refused_by(
                fixture
                    .order("acct", &["b.lab.example", "c.other.example"])
                    .await,
                "domain:lab.example",
            );
            assert_eq!(fixture.stored_orders().await, 0);
            // Had the refused order taken the account's token, the second of
            // these would be refused.
            fixture.order("acct", &["c.other.example"]).await.unwrap();
            fixture.order("acct", &["d.other.example"]).await.unwrap();
            assert_eq!(fixture.stored_orders().await, 2);
        }
    }

    on_both_backends! {
        async fn pending_authorizations_of_an_account_are_capped() {
            let mut fixture = Fixture::new("off", "off").await;
            fixture.rate_limits.pending_authorizations_per_account = Some(3);
            fixture
                .order("acct", &["a.lab.example", "b.lab.example"])
                .await
                .unwrap();
            // Three would be four pending: refused, nothing stored.
            let refused = fixture
                .order("acct", &["c.lab.example", "d.lab.example"])
                .await
                .unwrap_err();
            assert_eq!(refused.kind, ProblemType::RateLimited, "{refused}");
            assert!(refused.detail.contains("more than 3 pending"), "{refused}");
            // The earliest pending authorization expires in an hour.
            assert_eq!(refused.retry_after, Some(3600), "{refused}");
            assert_eq!(fixture.stored_orders().await, 1);
            fixture.order("acct", &["c.lab.example"]).await.unwrap();
            assert!(fixture.order("acct", &["e.lab.example"]).await.is_err());
            assert_eq!(fixture.stored_orders().await, 2);
        }
    }

    on_both_backends! {
        async fn an_order_that_cannot_be_created_takes_no_token() {
            let fixture = Fixture::new("1/1h", "1/1h").await;
            // Refused by the profile's CA, before anything is written.
            let refused = fixture
                .order("acct", &["a.lab.example", "refused.lab.example"])
                .await
                .unwrap_err();
            assert_eq!(refused.kind, ProblemType::RejectedIdentifier, "{refused}");
            assert_eq!(refused.subproblems.len(), 1, "{refused}");
            // Refused by the store after the tokens were taken in the same
            // write: no account "ghost" exists for the order to belong to.
            for _ in 0..2 {
                let failed = fixture
                    .order("ghost", &["a.lab.example"])
                    .await
                    .unwrap_err();
                assert_eq!(failed.kind, ProblemType::ServerInternal, "{failed}");
            }
            assert_eq!(fixture.stored_orders().await, 0);
            // The single token of account:acct is still there.
            fixture.order("acct", &["a.lab.example"]).await.unwrap();
            refused_by(
                fixture.order("acct", &["b.lab.example"]).await,
                "account:acct",
            );
        }
    }
}

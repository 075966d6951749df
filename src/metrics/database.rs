//! What `/metrics` reports from the database (orders by status, the
//! certificates in use by profile and expiry), counted in the background
//! instead of at every scrape.
//!
//! Counting is one aggregate over each table: its cost grows with the
//! database (about 2 ms per 1,000 certificates), while a scrape must stay
//! cheap however much is stored. So the counts are taken at most
//! [`REFRESH_EVERY`] apart while someone scrapes, and a scrape serves the
//! last ones, never older than [`FRESH_FOR`]: it counts itself only when
//! there are none that fresh (the first scrape, or the first after a long
//! pause, when the background stops counting). Counting the database,
//! rather than adding up what this process did, keeps the gauges right
//! across restarts and with several replicas on one PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::status::OrderStatus;
use crate::store::stats::ProfileCertificates;
use crate::store::{Store, StoreError};
use crate::util::clock::Clock;

/// A scrape never serves counts older than this; the help text of each
/// gauge says so. Orders and expiries change over minutes and days, and
/// Prometheus scrapes every 15 s to 1 min.
pub const FRESH_FOR: Duration = Duration::from_secs(60);
/// How often the counts are taken again while scrapes come: at 100,000
/// certificates one count takes about 0.2 s of CPU, so this is under 1 %
/// of a core.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// With no scrape for this long the background stops counting, so an idle
/// server does not read its whole database every few seconds.
const IDLE_AFTER: Duration = Duration::from_secs(300);

/// The expiry horizons certificates are counted against, with their label.
pub const EXPIRY_HORIZONS: [(&str, Duration); 2] = [
    ("30d", Duration::from_secs(30 * 86_400)),
    ("7d", Duration::from_secs(7 * 86_400)),
];

/// The database's counts at one moment.
#[derive(Debug, Clone)]
pub struct Counts {
    /// When they were taken (monotonic).
    taken: Instant,
    pub orders: Vec<(OrderStatus, i64)>,
    pub certificates: Vec<ProfileCertificates>,
    /// Leaf certificates found at Vault in use, by mount (in `profile`).
    pub vault: Vec<ProfileCertificates>,
    /// Superseded certificates still in use, by profile.
    pub superseded: Vec<crate::store::superseded::SupersededCount>,
}

impl Counts {
    async fn take(store: &Store, clock: &dyn Clock) -> Result<Self, StoreError> {
        let now = clock.now();
        let horizons = EXPIRY_HORIZONS.map(|(_, horizon)| horizon);
        Ok(Self {
            taken: Instant::now(),
            orders: store.orders_by_status().await?,
            certificates: store.valid_certificates_by_profile(now, &horizons).await?,
            vault: store
                .valid_vault_certificates_by_mount(now, &horizons)
                .await?,
            superseded: store.superseded_counts(now).await?,
        })
    }
}

/// The last counts, and when someone last asked for them.
#[derive(Debug)]
pub struct DatabaseCounts {
    fresh_for: Duration,
    refresh_every: Duration,
    /// Held by a scrape that counts itself, so that scrapes arriving
    /// meanwhile wait for its counts instead of counting too.
    counting: tokio::sync::Mutex<()>,
    last: Mutex<Option<Arc<Counts>>>,
    last_scrape: Mutex<Option<Instant>>,
}

impl Default for DatabaseCounts {
    fn default() -> Self {
        Self::new(FRESH_FOR, REFRESH_EVERY)
    }
}

impl DatabaseCounts {
    fn new(fresh_for: Duration, refresh_every: Duration) -> Self {
        Self {
            fresh_for,
            refresh_every,
            counting: Default::default(),
            last: Mutex::default(),
            last_scrape: Mutex::default(),
        }
    }

    /// Counts at most [`FRESH_FOR`] old, for a scrape: the kept ones, or
    /// (when they are older) new ones taken now.
    pub async fn for_scrape(
        &self,
        store: &Store,
        clock: &dyn Clock,
    ) -> Result<Arc<Counts>, StoreError> {
        *lock(&self.last_scrape) = Some(Instant::now());
        if let Some(kept) = self.fresh() {
            return Ok(kept);
        }
        let _counting = self.counting.lock().await;
        if let Some(kept) = self.fresh() {
            return Ok(kept);
        }
        let counts = Arc::new(Counts::take(store, clock).await?);
        *lock(&self.last) = Some(counts.clone());
        Ok(counts)
    }

    fn fresh(&self) -> Option<Arc<Counts>> {
        let kept = lock(&self.last).clone();
        kept.filter(|counts| counts.taken.elapsed() < self.fresh_for)
    }

    /// Whether a scrape came within [`IDLE_AFTER`].
    fn scraped_lately(&self) -> bool {
        lock(&self.last_scrape).is_some_and(|at| at.elapsed() < IDLE_AFTER)
    }

    /// Takes the counts every [`REFRESH_EVERY`] while scrapes come; runs
    /// until its task is aborted. A count that fails is logged, and the
    /// next scrape, finding no fresh counts, asks the database itself and
    /// answers with its error.
    pub async fn keep_fresh(self: Arc<Self>, store: Store, clock: Arc<dyn Clock>) {
        let mut ticks = tokio::time::interval(self.refresh_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !self.scraped_lately() {
                continue;
            }
            match Counts::take(&store, clock.as_ref()).await {
                Ok(counts) => *lock(&self.last) = Some(Arc::new(counts)),
                Err(e) => {
                    tracing::warn!(error = %e, "counting orders and certificates for /metrics failed")
                }
            }
        }
    }
}

/// A poisoned lock still holds a whole value: each is set in one assignment.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::clock::SystemClock;

    #[tokio::test]
    async fn a_scrape_counts_once_then_serves_the_kept_counts_while_fresh() {
        let (_database, store) = crate::store::testing::temporary().await;
        let counts = DatabaseCounts::default();
        let first = counts.for_scrape(&store, &SystemClock).await.unwrap();
        let second = counts.for_scrape(&store, &SystemClock).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "fresh counts are served as kept"
        );
        assert!(counts.scraped_lately());

        let never_fresh = DatabaseCounts::new(Duration::ZERO, REFRESH_EVERY);
        let first = never_fresh.for_scrape(&store, &SystemClock).await.unwrap();
        let second = never_fresh.for_scrape(&store, &SystemClock).await.unwrap();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "counts too old are taken again"
        );
    }

    #[tokio::test]
    async fn the_background_counts_again_only_once_scraped() {
        let (_database, store) = crate::store::testing::temporary().await;
        let every = Duration::from_millis(20);
        let counts = Arc::new(DatabaseCounts::new(FRESH_FOR, every));
        let task = tokio::spawn(
            counts
                .clone()
                .keep_fresh(store.clone(), Arc::new(SystemClock)),
        );
        tokio::time::sleep(every * 5).await;
        assert!(
            lock(&counts.last).is_none(),
            "nobody scraped: nothing counted"
        );

        let scraped = counts.for_scrape(&store, &SystemClock).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let last = lock(&counts.last).clone().unwrap();
            if !Arc::ptr_eq(&scraped, &last) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not counted again in the background"
            );
            tokio::time::sleep(every).await;
        }
        task.abort();
    }
}

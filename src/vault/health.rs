//! Vault's health as certgate last saw it, shared by every call through one
//! [`Vault`](super::Vault) client.
//!
//! Without a shared view each waiting order found out on its own, with its
//! own backoff, that Vault was back: orders finished tens of seconds after
//! Vault returned, and every order kept sending requests into an outage.
//! Here every call's outcome updates one state; while it says "down", new
//! signing requests are held back (a circuit breaker) and a single prober
//! asks Vault's token endpoint once a second. The first answer, from the
//! prober or any other call, turns the state "up" and wakes every waiting
//! order at once.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::VaultError;

/// How often the prober asks Vault while it is down: often enough that
/// waiting orders finish within seconds of Vault coming back.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// The longest pause between probes of a Vault that keeps failing again
/// right after passing them.
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// An outage that starts sooner than this after Vault came back counts as
/// the same trouble (a flap): the token lookup passes but signing fails,
/// as with a mount that lost its CA. Each flap doubles the pause between
/// probes, so such a Vault is not sent every waiting order every second.
const FLAP_WINDOW: Duration = Duration::from_secs(10);

/// What the last call said about Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Vault answered (or nothing has been asked yet).
    Up,
    /// Vault could not be reached, did not answer, or answered that it
    /// cannot serve (sealed, failing); `cause` says which, for operators.
    Down { cause: String },
}

impl Availability {
    pub fn is_down(&self) -> bool {
        matches!(self, Self::Down { .. })
    }
}

/// What a call's outcome says about Vault's health.
pub(super) enum Outcome<'a> {
    /// Vault answered: with data, or with an error that only Vault itself
    /// can give (a 400 or a 403 proves it is up and unsealed).
    Answered,
    /// The call proves Vault cannot serve now.
    Outage(&'a VaultError),
    /// Nothing learned (certgate could not read its own credentials).
    Unknown,
}

impl<'a> Outcome<'a> {
    pub fn of<T>(result: &'a Result<T, VaultError>) -> Self {
        match result {
            Ok(_) => Self::Answered,
            Err(e) if e.is_outage() => Self::Outage(e),
            Err(VaultError::Credentials(_)) => Self::Unknown,
            Err(_) => Self::Answered,
        }
    }
}

/// The shared view: a watch channel every waiting order subscribes to,
/// and the bookkeeping of the prober.
pub(super) struct Health {
    state: watch::Sender<Availability>,
    /// When the current outage began, and when the last one ended.
    times: Mutex<Times>,
    /// Outages in a row that each began within [`FLAP_WINDOW`] of the end
    /// of the one before.
    flaps: AtomicU32,
    /// Set while a prober task runs, so there is never more than one.
    probing: AtomicBool,
}

#[derive(Default)]
struct Times {
    down_since: Option<Instant>,
    up_since: Option<Instant>,
}

impl Health {
    pub fn new() -> Self {
        Self {
            state: watch::Sender::new(Availability::Up),
            times: Mutex::new(Times::default()),
            flaps: AtomicU32::new(0),
            probing: AtomicBool::new(false),
        }
    }

    pub fn current(&self) -> Availability {
        self.state.borrow().clone()
    }

    pub fn is_down(&self) -> bool {
        self.state.borrow().is_down()
    }

    pub fn subscribe(&self) -> watch::Receiver<Availability> {
        self.state.subscribe()
    }

    /// Updates the view with one call's outcome, logging each change once:
    /// a WARN with the cause when Vault goes down, an INFO when it is back.
    pub fn record(&self, outcome: Outcome<'_>) {
        match outcome {
            Outcome::Unknown => {}
            Outcome::Answered => {
                let came_back = self.state.send_if_modified(|state| {
                    if state.is_down() {
                        *state = Availability::Up;
                        true
                    } else {
                        false
                    }
                });
                if came_back {
                    let mut times = self.times.lock().expect("health times");
                    let down_for = times.down_since.take().map(|t| t.elapsed());
                    times.up_since = Some(Instant::now());
                    tracing::info!(
                        down_for_ms = down_for.map(|d| d.as_millis() as u64),
                        "Vault answers again; signing resumes"
                    );
                }
            }
            Outcome::Outage(error) => {
                let cause = error.plainly();
                let went_down = self.state.send_if_modified(|state| {
                    if state.is_down() {
                        false
                    } else {
                        *state = Availability::Down {
                            cause: cause.clone(),
                        };
                        true
                    }
                });
                if went_down {
                    let mut times = self.times.lock().expect("health times");
                    let now = Instant::now();
                    let flapped = times
                        .up_since
                        .is_some_and(|up| now.duration_since(up) < FLAP_WINDOW);
                    let flaps = if flapped {
                        self.flaps.fetch_add(1, Ordering::Relaxed) + 1
                    } else {
                        self.flaps.store(0, Ordering::Relaxed);
                        0
                    };
                    times.down_since = Some(now);
                    tracing::warn!(
                        %cause,
                        probe_every_s = self.probe_interval_for(flaps).as_secs(),
                        "Vault is unavailable; signing waits until it answers again"
                    );
                }
            }
        }
    }

    /// The pause before the next probe.
    pub fn probe_interval(&self) -> Duration {
        self.probe_interval_for(self.flaps.load(Ordering::Relaxed))
    }

    fn probe_interval_for(&self, flaps: u32) -> Duration {
        PROBE_INTERVAL
            .saturating_mul(1 << flaps.min(6))
            .min(MAX_PROBE_INTERVAL)
    }

    /// Claims the prober's role; false when a prober already runs.
    pub fn start_probing(&self) -> bool {
        !self.probing.swap(true, Ordering::AcqRel)
    }

    /// Gives the role up. True when Vault went down again meanwhile and the
    /// role could be taken back: the caller must go on probing, since a
    /// waiter that saw the role taken started no prober of its own.
    pub fn stop_probing(&self) -> bool {
        self.probing.store(false, Ordering::Release);
        self.is_down() && self.start_probing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> VaultError {
        VaultError::Api {
            status: 503,
            message: "Vault is sealed".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_wake_when_any_answer_comes_back() {
        let health = Health::new();
        let error = sealed();
        health.record(Outcome::Outage(&error));
        assert_eq!(
            health.current(),
            Availability::Down {
                cause: "Vault is sealed".into()
            }
        );
        let mut waiter = health.subscribe();
        let woken = tokio::spawn(async move { waiter.wait_for(|s| !s.is_down()).await.is_ok() });
        // A refusal is an answer: Vault is up, whatever it thought of the request.
        let refused: Result<(), _> = Err(VaultError::Api {
            status: 400,
            message: "unknown role: x".into(),
        });
        health.record(Outcome::of(&refused));
        assert!(woken.await.unwrap());
        assert!(!health.is_down());
    }

    #[tokio::test(start_paused = true)]
    async fn a_vault_that_fails_right_after_coming_back_is_probed_less_often() {
        let health = Health::new();
        let error = sealed();
        health.record(Outcome::Outage(&error));
        assert_eq!(health.probe_interval(), PROBE_INTERVAL);
        for expected in [2, 4, 8, 16, 32, 60, 60] {
            health.record(Outcome::Answered);
            tokio::time::advance(Duration::from_secs(1)).await;
            health.record(Outcome::Outage(&error));
            assert_eq!(health.probe_interval(), Duration::from_secs(expected));
        }
        // Up for longer than the flap window: the next outage starts afresh.
        health.record(Outcome::Answered);
        tokio::time::advance(FLAP_WINDOW).await;
        health.record(Outcome::Outage(&error));
        assert_eq!(health.probe_interval(), PROBE_INTERVAL);
    }

    #[test]
    fn only_one_prober_runs_and_it_is_not_lost_to_a_race() {
        let health = Health::new();
        assert!(health.start_probing());
        assert!(!health.start_probing());
        // Up when the prober stops: the role is free again.
        assert!(!health.stop_probing());
        assert!(health.start_probing());
        // Down again when it stops: it keeps the role.
        let error = sealed();
        health.record(Outcome::Outage(&error));
        assert!(health.stop_probing());
        assert!(!health.start_probing());
    }
}

//! Turns for validations: at most so many run at once in all, and at most
//! so many of one account, so that one client's flood of challenges cannot
//! open every socket certgate has nor keep everyone else waiting. A
//! validation past a limit waits (in order: tokio's semaphores are fair)
//! with its challenge already `processing`, which is what a client polls
//! and what a restart resumes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::validation_limits::ValidationLimits;

/// The turns, shared by every validation task.
pub struct ValidationSlots {
    all: Arc<Semaphore>,
    per_account: usize,
    /// The semaphore of each account with a validation running or waiting,
    /// and how many there are; dropped when the count is back to zero.
    accounts: Mutex<HashMap<String, (Arc<Semaphore>, usize)>>,
}

/// A validation's turn; the slots return when it is dropped.
pub struct ValidationSlot<'a> {
    // Declared (so dropped) before the account's entry is released.
    _all: OwnedSemaphorePermit,
    _account: OwnedSemaphorePermit,
    _entry: AccountEntry<'a>,
}

/// One validation's claim on its account's entry, running or waiting; the
/// entry goes when the last claim does, even a claim of a validation whose
/// wait was cancelled.
struct AccountEntry<'a> {
    slots: &'a ValidationSlots,
    account_id: String,
}

impl Drop for AccountEntry<'_> {
    fn drop(&mut self) {
        let mut accounts = self.slots.accounts.lock().expect("validation slots lock");
        if let Some((_, users)) = accounts.get_mut(&self.account_id) {
            *users -= 1;
            if *users == 0 {
                accounts.remove(&self.account_id);
            }
        }
    }
}

impl ValidationSlots {
    pub fn new(limits: ValidationLimits) -> Self {
        Self {
            all: Arc::new(Semaphore::new(limits.concurrent)),
            per_account: limits.per_account,
            accounts: Mutex::default(),
        }
    }

    /// Waits for a turn of `account_id`: first one of the account's own,
    /// so that an account's waiting validations queue behind each other and
    /// not in front of other accounts', then one of all.
    pub async fn acquire(&self, account_id: &str) -> ValidationSlot<'_> {
        let account = {
            let mut accounts = self.accounts.lock().expect("validation slots lock");
            let (semaphore, users) = accounts
                .entry(account_id.to_owned())
                .or_insert_with(|| (Arc::new(Semaphore::new(self.per_account)), 0));
            *users += 1;
            semaphore.clone()
        };
        let entry = AccountEntry {
            slots: self,
            account_id: account_id.to_owned(),
        };
        if account.available_permits() == 0 || self.all.available_permits() == 0 {
            tracing::debug!(account = %account_id, "validation waits for a free slot");
        }
        let account_permit = account
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let all = self
            .all
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        ValidationSlot {
            _all: all,
            _account: account_permit,
            _entry: entry,
        }
    }

    /// Accounts with a validation running or waiting.
    #[cfg(test)]
    fn accounts_tracked(&self) -> usize {
        self.accounts.lock().expect("validation slots lock").len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn slots(concurrent: usize, per_account: usize) -> Arc<ValidationSlots> {
        Arc::new(ValidationSlots::new(ValidationLimits {
            concurrent,
            per_account,
        }))
    }

    /// Whether `account` gets a turn within a moment while the slots are
    /// as they are.
    async fn gets_a_turn(slots: &ValidationSlots, account: &str) -> bool {
        tokio::time::timeout(Duration::from_millis(50), slots.acquire(account))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn one_account_waits_for_its_own_turns_while_others_go_ahead() {
        let slots = slots(3, 2);
        let first = slots.acquire("flood").await;
        let second = slots.acquire("flood").await;
        assert!(!gets_a_turn(&slots, "flood").await);
        // The flooding account's waiter does not stand in front of others.
        let waiting = {
            let slots = slots.clone();
            tokio::spawn(async move {
                let _turn = slots.acquire("flood").await;
            })
        };
        let honest = slots.acquire("honest").await;
        // All three turns are taken now: even the honest account waits.
        assert!(!gets_a_turn(&slots, "other").await);
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting validation gets the freed turn")
            .unwrap();
        drop((second, honest));
        assert_eq!(slots.accounts_tracked(), 0, "no account left behind");
        assert!(gets_a_turn(&slots, "other").await);
    }
}

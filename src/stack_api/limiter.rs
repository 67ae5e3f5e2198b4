//! One limiter for every request a run makes to Stack: at most `concurrency` in flight, and
//! when Stack asks one request to back off (429, 5xx, `Retry-After`), all of them wait, since a
//! rate limit is the project's, not the request's.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

#[derive(Debug)]
pub struct Limiter {
    slots: Semaphore,
    /// No request starts before this instant.
    paused_until: Mutex<Option<Instant>>,
}

impl Limiter {
    pub fn new(concurrency: usize) -> Self {
        Self {
            slots: Semaphore::new(concurrency),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits out any pause, then for a free slot; the slot is held until the permit drops.
    pub async fn turn(&self) -> SemaphorePermit<'_> {
        loop {
            let pause = *self.paused_until.lock().expect("never poisoned");
            if let Some(until) = pause.filter(|until| *until > Instant::now()) {
                tokio::time::sleep_until(until).await;
                continue;
            }
            let permit = self.slots.acquire().await.expect("never closed");
            // A pause may have begun while this one waited for its slot.
            let pause = *self.paused_until.lock().expect("never poisoned");
            if pause.is_none_or(|until| until <= Instant::now()) {
                return permit;
            }
        }
    }

    /// Holds every request back for `wait` from now (a longer pause already set stands).
    pub fn pause_all(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().expect("never poisoned");
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_back_every_later_request() {
        let limiter = Arc::new(Limiter::new(4));
        let started = Instant::now();
        limiter.pause_all(Duration::from_secs(3));

        let turns = (0..3).map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                let _turn = limiter.turn().await;
                Instant::now()
            })
        });
        let times = futures::future::join_all(turns).await;

        for time in times {
            assert!(time.unwrap() - started >= Duration::from_secs(3));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_concurrency_are_in_flight() {
        let limiter = Limiter::new(2);
        let first = limiter.turn().await;
        let _second = limiter.turn().await;

        let third = tokio::time::timeout(Duration::from_secs(1), limiter.turn()).await;
        assert!(third.is_err(), "a third turn while two are out");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(1), limiter.turn()).await;
        assert!(third.is_ok(), "a turn once one is back");
    }
}

//! Restart delays (exponential backoff with a cap and a reset) and the start limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kennel_units::Restart;

use crate::fmt::duration;

/// Per-unit restart bookkeeping: consecutive restarts and the recent spawn instants.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// Restarts in a row without a run that lasted `reset_after`.
    consecutive: u32,
    /// Spawn instants, oldest first, pruned to the `interval` window.
    starts: VecDeque<Instant>,
}

/// What to do instead of the restart.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StartLimitHit {
    /// `start limit hit: 5 starts within 10s`: the starts made within the window (as many as
    /// `burst` allows, or more if a reload lowered it), the refused one not counted.
    pub(crate) detail: String,
}

impl Backoff {
    /// Forget everything (a user start).
    pub(crate) fn reset(&mut self) {
        *self = Backoff::default();
    }

    /// A process is being spawned now.
    pub(crate) fn record_start(&mut self, cfg: &Restart, now: Instant) {
        self.prune(cfg, now);
        self.starts.push_back(now);
    }

    fn prune(&mut self, cfg: &Restart, now: Instant) {
        while let Some(&t) = self.starts.front() {
            if now.saturating_duration_since(t) >= cfg.interval {
                self.starts.pop_front();
            } else {
                break;
            }
        }
    }

    /// Decide a restart after a process that ran for `ran_for`: the delay, or the start
    /// limit. The consecutive count only advances when the restart is allowed.
    pub(crate) fn next_delay(
        &mut self,
        cfg: &Restart,
        ran_for: Option<Duration>,
        now: Instant,
    ) -> Result<Duration, StartLimitHit> {
        if ran_for.is_some_and(|d| d >= cfg.reset_after) {
            self.consecutive = 0;
        }
        self.prune(cfg, now);
        let made = self.starts.len();
        if made >= cfg.burst as usize {
            return Err(StartLimitHit {
                detail: format!(
                    "start limit hit: {made} start{} within {}",
                    if made == 1 { "" } else { "s" },
                    duration(cfg.interval)
                ),
            });
        }
        self.consecutive = self.consecutive.saturating_add(1);
        Ok(delay_for(cfg, self.consecutive))
    }
}

/// The delay before the `n`-th consecutive restart (n >= 1): `delay * 2^(n-1)`, capped.
pub(crate) fn delay_for(cfg: &Restart, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    cfg.delay.saturating_mul(factor).min(cfg.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_and_caps() {
        let cfg = Restart {
            delay: ms(100),
            max_delay: ms(1000),
            ..Restart::default()
        };
        let got: Vec<_> = (1..=6).map(|n| delay_for(&cfg, n)).collect();
        assert_eq!(
            got,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(delay_for(&cfg, 200), ms(1000));
    }

    #[test]
    fn zero_delay_stays_zero() {
        let cfg = Restart {
            delay: Duration::ZERO,
            ..Restart::default()
        };
        assert_eq!(delay_for(&cfg, 40), Duration::ZERO);
    }

    #[test]
    fn start_limit_counts_the_window() {
        let cfg = Restart {
            burst: 2,
            interval: ms(1000),
            ..Restart::default()
        };
        let t0 = Instant::now();
        let mut b = Backoff::default();
        b.record_start(&cfg, t0);
        b.record_start(&cfg, t0 + ms(10));
        let hit = b.next_delay(&cfg, None, t0 + ms(20)).unwrap_err();
        assert_eq!(hit.detail, "start limit hit: 2 starts within 1s");
        // The first start leaves the window.
        assert_eq!(b.next_delay(&cfg, None, t0 + ms(1000)), Ok(ms(100)));
    }

    #[test]
    fn long_run_resets() {
        let cfg = Restart {
            burst: 100,
            ..Restart::default()
        };
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(&cfg, None, t0), Ok(ms(100)));
        assert_eq!(b.next_delay(&cfg, None, t0), Ok(ms(200)));
        assert_eq!(b.next_delay(&cfg, Some(cfg.reset_after), t0), Ok(ms(100)));
    }
}

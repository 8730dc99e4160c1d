use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use otto_runtime::rate_config::Limit;

use super::{Budget, Decision};

/// Keys above which a limiter forgets keys whose budget is full again.
const RETAIN_ABOVE: usize = 50_000;

/// In-process GCRA (governor), one keyed limiter per distinct limit. Budgets are checked in
/// order; one refused after an earlier one passed leaves that earlier one consumed (the Redis
/// limiter does not have this imprecision; this one only serves embedded mode and outages).
#[derive(Default)]
pub struct LocalLimiter {
    limiters: Mutex<HashMap<Limit, std::sync::Arc<DefaultKeyedRateLimiter<String>>>>,
}

impl LocalLimiter {
    fn limiter(&self, limit: Limit) -> Option<std::sync::Arc<DefaultKeyedRateLimiter<String>>> {
        let mut limiters = self.limiters.lock().ok()?;
        let limiter = limiters.entry(limit).or_insert_with(|| {
            let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(limit.interval)
                .unwrap_or_else(|| Quota::per_second(burst))
                .allow_burst(burst);
            std::sync::Arc::new(DefaultKeyedRateLimiter::keyed(quota))
        });
        Some(limiter.clone())
    }

    pub fn check(&self, budgets: &[Budget]) -> Decision {
        let clock = DefaultClock::default();
        for budget in budgets {
            let Some(limiter) = self.limiter(budget.limit) else {
                continue;
            };
            if limiter.len() > RETAIN_ABOVE {
                limiter.retain_recent();
            }
            if let Err(not_until) = limiter.check_key(&budget.key) {
                return Decision::Refused {
                    kind: budget.kind,
                    limit: budget.limit,
                    retry_after: not_until.wait_time_from(clock.now()),
                };
            }
        }
        Decision::Allowed
    }
}

use std::time::Duration;

use deadpool_redis::Pool;
use redis::Script;

use super::{Budget, Decision};

/// GCRA over every budget at once, on Redis's clock. For each key the stored value is its
/// theoretical arrival time (TAT, microseconds). A request is allowed when, for every key,
/// `now >= tat - (burst - 1) * interval`; only then are all TATs advanced. Returns 0 or
/// `{index of the refusing budget (1-based), microseconds until it would pass}`.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat - (burst - 1) * interval
  if now < allow_at then return {i, allow_at - now} end
  tats[i] = tat + interval
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tats[i], 'PX', math.ceil((tats[i] - now) / 1000) + 1)
end
return 0
";

pub struct RedisLimiter {
    pool: Pool,
    prefix: String,
    script: Script,
}

impl RedisLimiter {
    pub fn new(pool: Pool, prefix: String) -> Self {
        Self {
            pool,
            prefix,
            script: Script::new(GCRA),
        }
    }

    pub async fn check(
        &self,
        budgets: &[Budget],
    ) -> Result<Decision, Box<dyn std::error::Error + Send + Sync>> {
        let mut invocation = self.script.prepare_invoke();
        for budget in budgets {
            invocation
                .key(format!("{}ratelimit:{}", self.prefix, budget.key))
                .arg(budget.limit.interval.as_micros() as u64)
                .arg(budget.limit.burst);
        }
        let mut conn = self.pool.get().await?;
        let reply: redis::Value = invocation.invoke_async(&mut *conn).await?;
        let refused: Option<(usize, u64)> = match reply {
            redis::Value::Int(0) => None,
            other => Some(redis::from_redis_value(other)?),
        };
        Ok(match refused {
            None => Decision::Allowed,
            Some((index, wait_micros)) => {
                let budget = &budgets[index.saturating_sub(1).min(budgets.len() - 1)];
                Decision::Refused {
                    kind: budget.kind,
                    limit: budget.limit,
                    retry_after: Duration::from_micros(wait_micros),
                }
            }
        })
    }
}

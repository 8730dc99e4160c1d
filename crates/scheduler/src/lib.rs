//! The scheduler: fires each periodic job once per slot. It only enqueues; workers do the work.
//! With Redis, a leader lock makes one scheduler active and the others standbys.
//! A slot is claimed in the database (`schedule_runs`, unique on name and slot) in the same
//! transaction that enqueues, so two schedulers never both fire it, and a failed enqueue
//! leaves the slot to be fired on the next tick.

mod schedule;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use otto_db::TxnConn;
use otto_db::schedule_runs;
use otto_runtime::AppContext;
use otto_runtime::leader::LeaderLock;
use sea_orm::TransactionTrait;

pub use schedule::{Schedule, configured_schedule, standard_schedule, with_overrides};

const TICK: Duration = Duration::from_secs(1);

/// How long a leader's lock outlives its last renewal (renewed every tick).
const LEADER_TTL: Duration = Duration::from_secs(10);

pub struct Scheduler {
    ctx: AppContext,
    schedules: Vec<Schedule>,
    /// With Redis, only the holder of this lock fires; a second scheduler idles as a standby.
    leader: Option<LeaderLock>,
}

#[derive(Debug, thiserror::Error)]
enum FireError {
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("enqueue failed: {0}")]
    Queue(#[from] otto_runtime::jobs::QueueError),
    #[error("job payload cannot be serialised: {0}")]
    Payload(#[from] serde_json::Error),
}

impl Scheduler {
    pub fn new(ctx: AppContext, schedules: Vec<Schedule>) -> Self {
        let leader = ctx.redis.clone().map(|pool| {
            LeaderLock::new(
                pool,
                format!("{}scheduler:leader", ctx.config.redis.prefix),
                LEADER_TTL,
            )
        });
        Self {
            ctx,
            schedules,
            leader,
        }
    }

    /// Whether this scheduler may fire now: always without Redis (one process), else while it
    /// holds the leader lock (taken when free, renewed on every call).
    pub async fn lead(&self) -> bool {
        let Some(lock) = &self.leader else {
            return true;
        };
        match lock.acquire_or_renew().await {
            Ok(leading) => leading,
            Err(err) => {
                tracing::warn!(error = %err, "scheduler cannot reach Redis; not firing");
                false
            }
        }
    }

    /// Hands leadership to a standby at once (clean shutdown).
    pub async fn resign(&self) {
        if let Some(lock) = &self.leader
            && let Err(err) = lock.release().await
        {
            tracing::warn!(error = %err, "could not release the scheduler lock; it will expire");
        }
    }

    /// Ticks every second until shutdown.
    pub async fn run(self) {
        let names: Vec<&str> = self.schedules.iter().map(|s| s.name).collect();
        tracing::info!(schedules = %names.join(","), "scheduler started");
        let mut fired: HashMap<&'static str, DateTime<Utc>> = HashMap::new();
        let mut leading = false;
        loop {
            let now_leading = self.lead().await;
            if now_leading != leading {
                tracing::info!(leading = now_leading, "scheduler leadership changed");
                leading = now_leading;
            }
            // Summed over every scheduler replica, 0 means no leader (OttoSchedulerLeaderMissing).
            metrics::gauge!("scheduler_leader").set(f64::from(u8::from(leading)));
            if leading {
                self.tick(Utc::now(), &mut fired).await;
            }
            tokio::select! {
                () = self.ctx.shutdown.cancelled() => break,
                () = tokio::time::sleep(TICK) => {}
            }
        }
        if leading {
            self.resign().await;
        }
        metrics::gauge!("scheduler_leader").set(0.0);
        tracing::info!("scheduler stopped");
    }

    /// Fires every schedule whose current slot this process has not fired yet.
    pub async fn tick(&self, now: DateTime<Utc>, fired: &mut HashMap<&'static str, DateTime<Utc>>) {
        for schedule in &self.schedules {
            let Some(slot) = schedule.slot(now) else {
                continue;
            };
            if fired.get(schedule.name) == Some(&slot) {
                continue;
            }
            match self.fire(schedule, slot).await {
                Ok(claimed) => {
                    fired.insert(schedule.name, slot);
                    if claimed {
                        tracing::info!(schedule = schedule.name, slot = %slot, "schedule fired");
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, schedule = schedule.name, "schedule did not fire; retrying")
                }
            }
        }
    }

    /// Claims the slot and enqueues its job in one transaction; false if already claimed.
    async fn fire(&self, schedule: &Schedule, slot: DateTime<Utc>) -> Result<bool, FireError> {
        let txn = TxnConn::Transaction(self.ctx.db.begin().await?);
        if !schedule_runs::claim(&txn, schedule.name, slot).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        self.ctx.queue.push_in(&txn, schedule.job(slot)?).await?;
        txn.commit().await?;
        Ok(true)
    }
}

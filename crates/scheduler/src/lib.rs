//! The scheduler: fires each periodic job once per slot. It only enqueues; workers do the work.
//! A slot is claimed in the database (`schedule_runs`, unique on name and slot) in the same
//! transaction that enqueues, so two schedulers never both fire it, and a failed enqueue
//! leaves the slot to be fired on the next tick.

mod schedule;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use otto_db::schedule_runs;
use otto_runtime::AppContext;
use sea_orm::TransactionTrait;

pub use schedule::{Schedule, standard_schedule};

const TICK: Duration = Duration::from_secs(1);

pub struct Scheduler {
    ctx: AppContext,
    schedules: Vec<Schedule>,
}

#[derive(Debug, thiserror::Error)]
enum FireError {
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("enqueue failed: {0}")]
    Queue(#[from] otto_runtime::jobs::QueueError),
}

impl Scheduler {
    pub fn new(ctx: AppContext, schedules: Vec<Schedule>) -> Self {
        Self { ctx, schedules }
    }

    /// Ticks every second until shutdown.
    pub async fn run(self) {
        let names: Vec<&str> = self.schedules.iter().map(|s| s.name).collect();
        tracing::info!(schedules = %names.join(","), "scheduler started");
        let mut fired: HashMap<&'static str, DateTime<Utc>> = HashMap::new();
        loop {
            self.tick(Utc::now(), &mut fired).await;
            tokio::select! {
                () = self.ctx.shutdown.cancelled() => break,
                () = tokio::time::sleep(TICK) => {}
            }
        }
        tracing::info!("scheduler stopped");
    }

    /// Fires every schedule whose current slot this process has not fired yet.
    pub async fn tick(&self, now: DateTime<Utc>, fired: &mut HashMap<&'static str, DateTime<Utc>>) {
        for schedule in &self.schedules {
            let slot = schedule.slot(now);
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
        let txn = self.ctx.db.begin().await?;
        if !schedule_runs::claim(&txn, schedule.name, slot).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        self.ctx.queue.push_in(&txn, schedule.job(slot)).await?;
        txn.commit().await?;
        Ok(true)
    }
}

//! Integration tests: the real application on a random port, against a fresh SQLite file and a
//! fresh PostgreSQL database (created and dropped per test), and real Redis under a unique key
//! prefix. One test binary, so the app is linked once.

/// Runs `async fn $name(db: TestDatabase) -> TestResult` once on SQLite and once on PostgreSQL.
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use crate::helpers::{TestDatabase, TestResult};

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() -> TestResult {
                    super::$name(TestDatabase::sqlite()).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() -> TestResult {
                    super::$name(TestDatabase::postgres().await?).await
                }
            }
        )+
    };
}

mod helpers;

mod appointments;
mod assistant;
mod auth;
mod binaries;
mod calendar;
mod calls;
mod dashboard;
mod documents;
mod fake_google;
mod fault_drills;
mod followups;
mod integrations;
mod jobs;
mod leads;
mod object_storage;
mod ops;
mod outbox;
mod pipeline;
mod rate_limits;
mod realtime;
mod recordings;
mod reports;
mod scheduled_jobs;
mod sms;
mod sms_outbound;
mod storage;
mod tasks;
mod team;
mod timeline;
mod unit_of_work;
mod webhook_batches;
mod webhooks;
mod worker_processes;
mod worker_runtime;

//! The job worker, on apalis's worker runtime over Otto's own durable queues. The runner
//! (`runner`, `backend`, `ack`, `registry`, `typed`, `heartbeat`) leases jobs from the queue,
//! runs their handlers, retries with backoff, dead-letters what keeps failing, beats its
//! heartbeat and stops gracefully; it knows no application job. The application's jobs live in
//! [`jobs`]: each is a payload type of `otto_domain::jobs` and a handler calling the service layer.

mod ack;
mod backend;
mod heartbeat;
pub mod jobs;
mod registry;
mod runner;
pub mod typed;

pub use registry::{JobError, JobHandler, Registry};
pub use runner::{Worker, WorkerSettings};

//! The job worker: leases jobs from the queue, runs their handlers, retries with backoff,
//! dead-letters what keeps failing, beats its heartbeat, and stops gracefully.

mod heartbeat;
pub mod maintenance;
pub mod pipeline;
mod registry;
pub mod reports;
mod runner;
pub mod typed;

pub use registry::{JobError, JobHandler, Registry};
pub use runner::{Worker, WorkerSettings};

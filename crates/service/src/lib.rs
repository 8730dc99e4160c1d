//! The service layer: Otto's domain operations, shared by the routes, the webhooks, the jobs
//! (and, later, the assistant). A function here takes a [`TenantTxn`](otto_db::TenantTxn),
//! writes through it, emits its events and enqueues its follow-on jobs into it; it knows neither
//! HTTP nor the queue. Its callers own the unit of work and commit it.

pub mod appointments;
pub mod ask;
pub mod assistant;
pub mod calendar;
pub mod call_views;
pub mod calls;
pub mod dashboard;
pub mod documents;
pub mod error;
pub mod followups;
pub mod members;
pub mod messages;
pub mod missed_calls;
pub mod property;
pub mod recordings;
pub mod sms;
pub mod tasks;
pub mod timeline;
pub mod training;
pub mod transcripts;
pub mod visibility;
pub mod zone;

#[cfg(test)]
mod properties;

pub use error::ServiceError;

//! Otto's domain vocabulary: typed ids, roles, the event envelope and domain errors.
//! Pure data: nothing in this crate performs I/O.

pub mod catalog;
pub mod error;
pub mod event;
pub mod ids;
pub mod jobs;
pub mod phone;
pub mod role;

pub use error::DomainError;
pub use event::{EventEnvelope, Severity};
pub use ids::{AppointmentId, CallId, LeadId, TaskId, TenantId, TraceId, UserId};
pub use phone::PhoneE164;
pub use role::Role;

#[cfg(test)]
mod phone_properties;

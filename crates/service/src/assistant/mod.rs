//! The AI receptionist (SPEC section 16): one dialogue engine for Twilio voice, Twilio SMS, the
//! web widget and the staff chat. [`engine`] runs turns over [`conversation`] state kept in the
//! conversation store; [`intake`] reads what callers say without a model; [`model`] converses
//! through an OpenAI-compatible model with tools the state machine checks; [`slots`] finds free
//! times; [`settings`] are the company's.

pub mod actions;
pub mod conversation;
pub mod engine;
pub mod feedback;
pub mod intake;
pub mod model;
pub mod script;
pub mod settings;
pub mod slots;

pub use conversation::{Action, Channel};
pub use engine::{Assistant, AssistantError, Reply, WidgetOwner};

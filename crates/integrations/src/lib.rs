//! Outbound provider clients: typed requests over reqwest with timeouts, retries, metrics and a
//! wiremock-tested contract.

pub mod bland;
pub mod callrail;
pub mod clerk;
pub mod deepgram;
pub mod google;
pub mod llm;
pub mod retry;
pub mod twilio;
pub mod uwc;

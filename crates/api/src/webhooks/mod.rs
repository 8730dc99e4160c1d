//! Provider webhooks (SPEC section 6).

pub mod signature;

//! Transports: adapters between a chat platform and the answering engine.
//!
//! Each turns a platform event into an [`answer::Request`](crate::answer::Request)
//! and the engine's [`Reply`](crate::reply::Reply) into the platform's format.
//! Platform crates (teloxide, matrix-sdk) may appear only below this module.

pub mod console;
pub mod matrix;
pub mod telegram;

//! One module per screen. Screens read view-models from the client core through
//! [`crate::state::Ctx`] and write through [`actions`], the same functions the tests call.

pub mod actions;
pub mod activities;
pub mod cases;
pub mod conflicts;
pub mod enroll;
pub mod households;
pub mod leader;
pub mod lock;
pub mod me;
pub mod party;
pub mod services;
pub mod supervisor;
pub mod today;

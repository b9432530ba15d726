//! The URL rewrite rules: pure functions, no I/O, no async.

mod codes;

pub use codes::{Action, Fix, NewAuth, UnknownCode};

//! The URL rewrite rules: pure functions, no I/O, no async.

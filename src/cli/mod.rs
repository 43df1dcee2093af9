//! The command line's definitions (arguments, help texts, exit statuses) and what is generated
//! from them (shell completions, manual pages), apart from the code that runs the commands;
//! and the progress line a running command draws on standard error.

pub mod args;
pub mod errors;
pub mod generate;
pub mod help;
pub mod progress;

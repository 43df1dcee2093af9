//! The command line's definitions (arguments, help texts, exit statuses) and what is generated
//! from them (shell completions, manual pages), apart from the code that runs the commands.

pub mod args;
pub mod errors;
pub mod generate;
pub mod help;

//! Renderings of a lint result: rustc-style text, JSON, SARIF 2.1.0 and GitHub annotations.

mod github;
mod json;
mod sarif;
mod text;

pub use github::render as github;
pub use json::render as json;
pub use sarif::render as sarif;
pub use text::{TextOptions, render as text};

/// The command that shows a rule's documentation: the pages ship inside cniswap (and in
/// `docs/rules/` of the source), so they are there offline and match the version that found it.
pub fn explain_command(rule: &str) -> String {
    format!("cniswap explain {rule}")
}

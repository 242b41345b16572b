//! Renderings of a lint result: rustc-style text, JSON, SARIF 2.1.0 and GitHub annotations.

mod github;
mod json;
mod sarif;
mod text;

pub use github::render as github;
pub use json::render as json;
pub use sarif::render as sarif;
pub use text::{TextOptions, render as text};

/// Where a rule's documentation lives online (also printed by `cniswap explain`).
pub fn docs_url(rule: &str) -> String {
    format!("https://github.com/cniswap/cniswap/blob/main/docs/rules/{rule}.md")
}

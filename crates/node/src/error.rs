/// A node-agent failure: what went wrong, and what to do next.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NodeError {
    pub message: String,
    pub help: String,
}

impl NodeError {
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        NodeError {
            message: message.into(),
            help: help.into(),
        }
    }
}

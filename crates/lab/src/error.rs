use std::path::PathBuf;

/// Why the lab could not come up or go down. Each names the component, node or command and,
/// for a process, ends with the last lines of its log.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{component} did not start: {reason}\n--- last lines of {log} ---\n{tail}")]
    Component {
        component: String,
        reason: String,
        log: PathBuf,
        tail: String,
    },
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("Kubernetes API: {what}: {message}")]
    Api { what: String, message: String },
    #[error("timed out after {seconds} s waiting for {what}{detail}")]
    Timeout {
        what: String,
        seconds: u64,
        detail: String,
    },
    #[error("{0}")]
    Other(String),
    #[error(transparent)]
    Components(#[from] Box<crate::components::ComponentError>),
    #[error(transparent)]
    Image(#[from] Box<crate::image::ImageError>),
}

impl LabError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
        let what = what.into();
        move |source| LabError::Io { what, source }
    }

    pub fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> LabError {
        let what = what.into();
        move |error| LabError::Api {
            what,
            message: error.to_string(),
        }
    }
}

impl From<crate::components::ComponentError> for LabError {
    fn from(error: crate::components::ComponentError) -> Self {
        LabError::Components(Box::new(error))
    }
}

impl From<crate::image::ImageError> for LabError {
    fn from(error: crate::image::ImageError) -> Self {
        LabError::Image(Box::new(error))
    }
}

pub type Result<T, E = LabError> = std::result::Result<T, E>;

//! Pushing cniswap's image to a container registry without a container daemon: the target
//! name checked by the image reference rules ([`ImageName`]), credentials from where docker and
//! podman keep them ([`credentials::lookup`]), and the push over the OCI distribution API
//! ([`Registry`]), which reads the manifest's digest back from the registry. Every error says what
//! failed and what to do, and never carries a password or token.

pub mod credentials;
mod name;
mod push;

pub use credentials::{Auth, Credentials, CredentialsError, Source};
pub use name::{ImageName, NameError, check_tag};
pub use push::{Failure, PushError, Pushed, Registry, Transport};

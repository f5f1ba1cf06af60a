//! Plaza's testnets (DESIGN §10): the deterministic cluster simulator ([`sim`]); and, with
//! the default `processes` feature, real `plaza` processes: the local testnet on loopback
//! ([`local`]), the alliance day played on it ([`demo`]), the load generator ([`load`]), the
//! benchmark ([`bench`]) and the container testnet under perturbations ([`docker`]).
//!
//! Architecture invariant: the simulator part knows nothing of processes, sockets or the
//! node's API; everything that starts a process or speaks HTTP is behind `processes`.

pub mod places;
pub mod sim;
pub mod workload;

#[cfg(feature = "processes")]
pub mod api;
#[cfg(feature = "processes")]
pub mod bench;
#[cfg(feature = "processes")]
pub mod demo;
#[cfg(feature = "processes")]
pub mod docker;
#[cfg(feature = "processes")]
pub mod load;
#[cfg(feature = "processes")]
pub mod local;

/// A testnet's failure: one line for the user. `Diverged` is a check that found two nodes
/// disagreeing (the CLI gives it its own exit code).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Diverged(String),
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Error {
        Error::Failed(message.into())
    }
    pub fn diverged(message: impl Into<String>) -> Error {
        Error::Diverged(message.into())
    }
}

/// Wraps any displayable error with context: `ctx("reading genesis")(e)`.
pub fn ctx<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> Error {
    let what = what.into();
    move |e| Error::Failed(format!("{what}: {e}"))
}

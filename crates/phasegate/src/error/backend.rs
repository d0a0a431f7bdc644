//! Which kind of disposable PostgreSQL an error is about, so a caller
//! matches the kind rather than its name (`pg` gives the servers).

/// The kind of server a `pg::Backend` gives: which one `Backend::Auto`
/// settled on, which one failed to start (`Error::Backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// A container.
    Docker,
    /// A cluster of the local binaries.
    Local,
    /// A server the caller named by its URL.
    Url,
}

impl BackendKind {
    /// The name `--backend` takes: `docker`, `local`, `url`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Docker => "docker",
            BackendKind::Local => "local",
            BackendKind::Url => "url",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

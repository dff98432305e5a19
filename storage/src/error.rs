//! The storage crate's one error type: what went wrong, with the file it went wrong in.
//! Callers branch on [`ErrorKind`]; messages name the file and say what was expected.

use std::path::PathBuf;

/// How a caller should react to a [`StorageError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes on disk are not what they should be: checksum mismatch, bad magic, truncation.
    /// Never retried; the file is refused.
    Corrupt,
    /// The file was written by a newer Silt (unknown format or tokenizer version).
    UnsupportedVersion,
    /// An I/O or object-store failure that may succeed on retry (disk full, S3 unreachable).
    Io,
    /// The caller passed something invalid (wrong schema, bad name).
    InvalidInput,
    /// The file or object does not exist.
    NotFound,
    /// Another process owns the data directory.
    Locked,
}

/// Any failure of the storage layer. `location` names the file or object it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    pub kind: ErrorKind,
    pub location: String,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    fn new(kind: ErrorKind, location: impl Into<String>, message: String) -> Self {
        Self {
            kind,
            location: location.into(),
            message,
            source: None,
        }
    }

    /// The bytes of `location` are damaged; `what` says which part and how.
    pub fn corrupt(location: impl Into<String>, what: impl std::fmt::Display) -> Self {
        let location = location.into();
        let message = format!("corrupt segment {location}: {what}");
        Self::new(ErrorKind::Corrupt, location, message)
    }

    pub fn unsupported_version(location: impl Into<String>, what: impl std::fmt::Display) -> Self {
        let location = location.into();
        let message = format!("unsupported format in {location}: {what}");
        Self::new(ErrorKind::UnsupportedVersion, location, message)
    }

    pub fn locked(what: String) -> Self {
        Self::new(ErrorKind::Locked, String::new(), what)
    }

    pub fn invalid_input(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidInput, String::new(), what.to_string())
    }

    pub fn io(
        location: impl Into<String>,
        action: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let location = location.into();
        let message = format!("cannot {action} {location}: {source}");
        Self {
            source: Some(Box::new(source)),
            ..Self::new(ErrorKind::Io, location, message)
        }
    }

    pub fn from_io(location: impl Into<String>, action: &str, source: std::io::Error) -> Self {
        let kind = if source.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Self {
            kind,
            ..Self::io(location, action, source)
        }
    }

    pub fn from_object_store(
        location: impl Into<String>,
        action: &str,
        source: object_store::Error,
    ) -> Self {
        let kind = if matches!(source, object_store::Error::NotFound { .. }) {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Self {
            kind,
            ..Self::io(location, action, source)
        }
    }

    /// A Parquet decoding failure while reading `location`: the file is not valid Parquet.
    pub fn from_parquet(
        location: impl Into<String>,
        source: parquet::errors::ParquetError,
    ) -> Self {
        let location = location.into();
        let message = format!("corrupt segment {location}: {source}");
        Self {
            source: Some(Box::new(source)),
            ..Self::new(ErrorKind::Corrupt, location, message)
        }
    }

    /// A Parquet failure while writing `location`.
    pub fn write_failed(
        location: impl Into<String>,
        source: parquet::errors::ParquetError,
    ) -> Self {
        let location = location.into();
        // The sink's own error (a full disk, say) without Parquet's "External: " wrapper.
        let source: Box<dyn std::error::Error + Send + Sync> = match source {
            parquet::errors::ParquetError::External(inner) => inner,
            other => Box::new(other),
        };
        let message = format!("cannot write segment {location}: {source}");
        Self {
            source: Some(source),
            ..Self::new(ErrorKind::Io, location, message)
        }
    }

    pub fn path_io(path: &std::path::Path, action: &str, source: std::io::Error) -> Self {
        Self::from_io(path.display().to_string(), action, source)
    }
}

/// Lets `?` turn a path + io error pair into a [`StorageError`] at call sites.
pub(crate) trait IoResultExt<T> {
    fn at(self, path: &PathBuf, action: &str) -> Result<T>;
}

impl<T> IoResultExt<T> for std::io::Result<T> {
    fn at(self, path: &PathBuf, action: &str) -> Result<T> {
        self.map_err(|e| StorageError::path_io(path, action, e))
    }
}

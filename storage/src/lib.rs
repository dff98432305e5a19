//! Silt's on-disk truth: log schema, tokenizer, Parquet segments with an embedded term index,
//! checksums, and every path under a data directory. Knows nothing about HTTP, SQL or the
//! search language.

pub mod catalog;
pub mod error;
pub mod index;
pub mod layout;
pub mod lock;
pub mod record;
pub mod schema;
pub mod segment;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod tokenizer;
pub mod wal;

pub use error::{ErrorKind, Result, StorageError};

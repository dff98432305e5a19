//! Integration tests of the storage crate: real segment files on disk and through object_store.

mod common;
mod corruption;
mod fixture;
mod python;
mod segment;

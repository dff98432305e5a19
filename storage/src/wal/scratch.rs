//! Byte buffers that WAL appends encode and compress records in, kept between appends: a
//! request's payload is megabytes, and a fresh buffer each time costs regrowth copies and faults.

use std::sync::{Mutex, PoisonError};

/// Buffers kept at most: two per append in flight (payload and compressed body).
const KEPT_BUFFERS: usize = 4;
/// Larger buffers are freed, not kept: the pool never holds more than 64 MiB.
const KEPT_BYTES: usize = 16 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer, with the capacity of an earlier one when the pool has one.
pub(super) fn take() -> Vec<u8> {
    POOL.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .unwrap_or_default()
}

/// Returns `buf` to the pool, or frees it when it is too large or the pool is full.
pub(super) fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > KEPT_BYTES {
        return;
    }
    buf.clear();
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if pool.len() < KEPT_BUFFERS {
        pool.push(buf);
    }
}

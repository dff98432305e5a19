//! Per-tenant admission: token buckets for ingest (lines/s and bytes/s) and a cap on
//! concurrent queries, so one tenant's flood never starves another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, Limits};

/// A token bucket that may go into debt: a request is admitted while the bucket is not
/// empty, and pays in full even when that takes it below zero. So a request bigger than the
/// burst still passes on an idle tenant, and the rate holds on average.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// `rate` per second, holding `burst_seconds` of it; rate 0 = unlimited.
    pub fn new(rate: u64, burst_seconds: f64) -> Self {
        let rate = rate as f64;
        Self {
            rate,
            capacity: rate * burst_seconds,
            tokens: rate * burst_seconds,
            updated: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
    }

    /// Seconds until the bucket is positive again (0 = now).
    fn wait_secs(&self) -> f64 {
        if self.tokens > 0.0 {
            0.0
        } else {
            (-self.tokens + 1.0) / self.rate
        }
    }
}

/// The limits and admission state of one tenant.
#[derive(Debug)]
pub struct TenantGate {
    pub limits: Limits,
    ingest: Mutex<(TokenBucket, TokenBucket)>,
    queries: Arc<Semaphore>,
}

/// Why a tenant's request was not admitted, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

impl TenantGate {
    fn new(limits: Limits) -> Self {
        let burst = limits.ingest_burst_seconds;
        Self {
            ingest: Mutex::new((
                TokenBucket::new(limits.ingest_lines_per_second, burst),
                TokenBucket::new(limits.ingest_bytes_per_second, burst),
            )),
            queries: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
            limits,
        }
    }

    /// Whether the tenant may send now at all (its buckets are not in debt): checked before
    /// a body is read, so a throttled tenant costs no reading or parsing.
    pub fn check_ingest(&self) -> Result<(), Throttled> {
        self.admit_ingest(0, 0)
    }

    /// Admits an ingest of `lines` lines and `bytes` bytes, or says how long to wait.
    pub fn admit_ingest(&self, lines: u64, bytes: u64) -> Result<(), Throttled> {
        let mut guard = self.ingest.lock().expect("token bucket lock");
        let (line_bucket, byte_bucket) = &mut *guard;
        let now = Instant::now();
        let mut wait: f64 = 0.0;
        for bucket in [&mut *line_bucket, &mut *byte_bucket] {
            if bucket.rate > 0.0 {
                bucket.refill(now);
                wait = wait.max(bucket.wait_secs());
            }
        }
        if wait > 0.0 {
            return Err(Throttled {
                retry_after_secs: wait.ceil() as u64,
            });
        }
        if line_bucket.rate > 0.0 {
            line_bucket.tokens -= lines as f64;
        }
        if byte_bucket.rate > 0.0 {
            byte_bucket.tokens -= bytes as f64;
        }
        Ok(())
    }

    /// A slot for one query, or `None` when the tenant already runs its maximum.
    pub fn try_query(&self) -> Option<OwnedSemaphorePermit> {
        self.queries.clone().try_acquire_owned().ok()
    }
}

/// A server-wide budget of bytes (request bodies being read and parsed), in KiB units.
#[derive(Debug)]
pub struct ByteBudget {
    permits: Arc<Semaphore>,
    total_kib: u32,
}

impl ByteBudget {
    pub fn new(bytes: u64) -> Self {
        let total_kib = (bytes / 1024).clamp(1, u64::from(u32::MAX >> 3)) as u32;
        Self {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Holds `bytes` of the budget until the permit is dropped; `None` when they are not free.
    /// A request bigger than the whole budget may still run alone.
    pub fn try_reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let kib = bytes.div_ceil(1024).clamp(1, u64::from(self.total_kib)) as u32;
        self.permits.clone().try_acquire_many_owned(kib).ok()
    }
}

/// The gates of all tenants, made on first use from the configuration.
#[derive(Debug)]
pub struct Gates {
    config: Config,
    gates: Mutex<HashMap<String, Arc<TenantGate>>>,
}

impl Gates {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            gates: Mutex::new(HashMap::new()),
        }
    }

    pub fn tenant(&self, tenant: &str) -> Arc<TenantGate> {
        let mut gates = self.gates.lock().expect("gates lock");
        gates
            .entry(tenant.to_string())
            .or_insert_with(|| {
                // Validated at startup, so the overrides always apply.
                let limits = self
                    .config
                    .tenant_limits(tenant)
                    .unwrap_or_else(|_| self.config.limits.clone());
                Arc::new(TenantGate::new(limits))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(lines_per_second: u64) -> TenantGate {
        TenantGate::new(Limits {
            ingest_lines_per_second: lines_per_second,
            ingest_bytes_per_second: 0,
            ingest_burst_seconds: 1.0,
            ..Limits::default()
        })
    }

    #[test]
    fn a_tenant_over_its_rate_is_throttled_with_a_retry_time() {
        let g = gate(100);
        // The first request may overdraw the bucket …
        assert!(g.admit_ingest(250, 0).is_ok());
        // … then the tenant waits until the debt is paid back.
        let throttled = g.admit_ingest(1, 0).unwrap_err();
        assert!(
            (1..=3).contains(&throttled.retry_after_secs),
            "{throttled:?}"
        );
    }

    #[test]
    fn the_byte_budget_admits_until_full_and_frees_on_drop() {
        let budget = ByteBudget::new(10 * 1024);
        let a = budget.try_reserve(6 * 1024).unwrap();
        assert!(budget.try_reserve(6 * 1024).is_none());
        let _b = budget.try_reserve(4 * 1024).unwrap();
        drop(a);
        // Larger than the whole budget: runs once the budget is free.
        assert!(budget.try_reserve(1 << 30).is_none());
        drop(_b);
        assert!(budget.try_reserve(1 << 30).is_some());
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let g = gate(0);
        for _ in 0..1000 {
            assert!(g.admit_ingest(1_000_000, 1 << 30).is_ok());
        }
    }

    #[test]
    fn concurrent_queries_are_capped_per_tenant() {
        let gates = Gates::new(Config {
            limits: Limits {
                max_concurrent_queries: 2,
                ..Limits::default()
            },
            ..Config::default()
        });
        let a = gates.tenant("a");
        let p1 = a.try_query().unwrap();
        let _p2 = a.try_query().unwrap();
        assert!(a.try_query().is_none());
        // Another tenant has its own slots.
        assert!(gates.tenant("b").try_query().is_some());
        drop(p1);
        assert!(a.try_query().is_some());
    }
}

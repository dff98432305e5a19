//! Who is calling: the API key from `Authorization: Bearer …` or `X-API-Key`, looked up in
//! the key store (reloaded when `keys.json` changes). The tenant always comes from the key.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use crate::keys::{KeyCheck, KeyIndex, Role};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    pub role: Role,
}

/// The key store as the server sees it.
#[derive(Debug)]
pub struct KeyRing {
    path: PathBuf,
    /// The loaded index and the file's bytes it was read from (`None`: no file).
    index: RwLock<(Arc<KeyIndex>, Option<Vec<u8>>)>,
    /// Without a key store, serve tenant `default` to anyone (loopback or `--insecure` only).
    open_without_keys: bool,
}

impl KeyRing {
    pub fn load(path: PathBuf, open_without_keys: bool) -> anyhow::Result<Self> {
        let bytes = read_store(&path);
        let index = KeyIndex::load(&path)?;
        Ok(Self {
            path,
            index: RwLock::new((Arc::new(index), bytes)),
            open_without_keys,
        })
    }

    /// No key store at all: the server is open (where that is allowed).
    pub fn is_open(&self) -> bool {
        self.index.read().expect("key ring lock").1.is_none()
    }

    fn current(&self) -> (Arc<KeyIndex>, bool) {
        let guard = self.index.read().expect("key ring lock");
        (guard.0.clone(), guard.1.is_none())
    }

    /// Re-reads the store if its contents changed (keys created or revoked by `silt keys`).
    /// A store that does not parse keeps the previous keys and is reported.
    pub fn reload_if_changed(&self) {
        let bytes = read_store(&self.path);
        if self.index.read().expect("key ring lock").1 == bytes {
            return;
        }
        match KeyIndex::load(&self.path) {
            Ok(index) => {
                tracing::info!(keys = index.len(), "reloaded API keys");
                *self.index.write().expect("key ring lock") = (Arc::new(index), bytes);
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "keeping the previous API keys"),
        }
    }

    /// The caller of a request that needs `role`: 401 without a valid key, 403 when the key's
    /// role does not allow it.
    pub fn authorize(&self, headers: &HeaderMap, role: Role) -> Result<Caller, ApiError> {
        let (index, no_store) = self.current();
        let presented = presented_key(headers)?;
        let caller = match presented {
            None if no_store && self.open_without_keys => {
                return Ok(Caller {
                    tenant: silt_engine::DEFAULT_TENANT.to_string(),
                    role: Role::Admin,
                });
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication_error",
                    "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                ));
            }
            Some(key) => match index.check(key) {
                KeyCheck::Valid(entry) => Caller {
                    tenant: entry.tenant.clone(),
                    role: entry.role,
                },
                KeyCheck::Invalid => {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "authentication_error",
                        "invalid or revoked API key",
                    ));
                }
            },
        };
        if !caller.role.allows(role) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "authorization_error",
                format!(
                    "this key has the role '{}'; this endpoint needs '{}' or 'admin'",
                    caller.role.as_str(),
                    role.as_str()
                ),
            ));
        }
        Ok(caller)
    }
}

fn read_store(path: &std::path::Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// The key in `Authorization: Bearer …` or `X-API-Key`, if any.
fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let invalid = |what: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            format!("malformed {what} header"),
        )
    };
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| invalid("Authorization"))?;
        let (scheme, key) = text
            .split_once(' ')
            .ok_or_else(|| invalid("Authorization"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                format!("unsupported authorization scheme '{scheme}' (use Bearer)"),
            ));
        }
        return Ok(Some(key.trim()));
    }
    if let Some(value) = headers.get("x-api-key") {
        return Ok(Some(
            value.to_str().map_err(|_| invalid("X-API-Key"))?.trim(),
        ));
    }
    Ok(None)
}

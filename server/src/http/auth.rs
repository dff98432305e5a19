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
        let caller = self.authenticate(headers)?;
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

    /// The caller, whatever its role: 401 without a valid key.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let (index, no_store) = self.current();
        // Without a key store, an open server ignores whatever credentials agents send
        // (a placeholder password, say); every caller is tenant `default`.
        let presented = if no_store && self.open_without_keys {
            None
        } else {
            presented_key(headers)?
        };
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
            Some(key) => match index.check(&key) {
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
        Ok(caller)
    }
}

fn read_store(path: &std::path::Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// The key in `Authorization` or `X-API-Key`, if any. `Authorization` takes the schemes
/// agents use: `Bearer <key>`, `ApiKey <key>` (Elasticsearch clients; also base64 of
/// `id:key`, the key being the part after the colon) and `Basic` (the password is the key,
/// the user name is ignored: Promtail, Filebeat and collectors configured with a password).
fn presented_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
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
        let key = key.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(Some(key.to_owned()));
        }
        if scheme.eq_ignore_ascii_case("apikey") {
            if crate::keys::looks_like_key(key) {
                return Ok(Some(key.to_owned()));
            }
            let pair = decode_base64_text(key).ok_or_else(|| invalid("Authorization ApiKey"))?;
            let secret = pair.split_once(':').map_or(pair.as_str(), |(_, k)| k);
            return Ok(Some(secret.to_owned()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let pair = decode_base64_text(key).ok_or_else(|| invalid("Authorization Basic"))?;
            let (_, password) = pair
                .split_once(':')
                .ok_or_else(|| invalid("Authorization Basic"))?;
            return Ok(Some(password.to_owned()));
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            format!("unsupported authorization scheme '{scheme}' (use Bearer, ApiKey or Basic)"),
        ));
    }
    if let Some(value) = headers.get("x-api-key") {
        return Ok(Some(
            value
                .to_str()
                .map_err(|_| invalid("X-API-Key"))?
                .trim()
                .to_owned(),
        ));
    }
    Ok(None)
}

fn decode_base64_text(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()
}

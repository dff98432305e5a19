//! API keys: the `keys.json` file in the data directory (only hashes of keys are stored),
//! the roles a key grants, and the lookup from a presented key to its tenant.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// File name of the key store inside the data directory.
pub const KEYS_FILE: &str = "keys.json";
const KEY_PREFIX: &str = "silt";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Send logs.
    Ingest,
    /// Search, aggregate and run SQL.
    Read,
    /// Everything of its tenant.
    Admin,
}

impl Role {
    /// Whether a key with this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
}

/// One key as stored: never the key itself, only its BLAKE3 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Public part of the key, used to list and revoke it.
    pub id: String,
    pub tenant: String,
    pub role: Role,
    /// BLAKE3 of the whole key, hex.
    pub hash: String,
    /// RFC 3339.
    pub created: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<KeyEntry>,
}

/// The keys of a data directory, indexed for lookups.
#[derive(Debug, Default)]
pub struct KeyIndex {
    by_id: HashMap<String, KeyEntry>,
}

/// The outcome of presenting a key.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheck<'a> {
    Valid(&'a KeyEntry),
    /// Malformed, unknown or revoked (the caller is not told which).
    Invalid,
}

pub fn keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYS_FILE)
}

impl KeyIndex {
    /// Reads `path`; a missing file is an empty store.
    pub fn load(path: &Path) -> anyhow::Result<KeyIndex> {
        let file = read_file(path)?;
        Ok(KeyIndex {
            by_id: file.keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Finds the entry of `key` and checks its hash (in constant time).
    pub fn check(&self, key: &str) -> KeyCheck<'_> {
        let Some(id) = key_id(key) else {
            return KeyCheck::Invalid;
        };
        let Some(entry) = self.by_id.get(id) else {
            return KeyCheck::Invalid;
        };
        let Ok(stored) = blake3::Hash::from_hex(&entry.hash) else {
            return KeyCheck::Invalid;
        };
        if blake3::hash(key.as_bytes()) == stored {
            KeyCheck::Valid(entry)
        } else {
            KeyCheck::Invalid
        }
    }
}

/// Whether `text` has the shape of a Silt key (`silt_<id>_<secret>`); says nothing of validity.
pub fn looks_like_key(text: &str) -> bool {
    key_id(text).is_some()
}

/// `silt_<id>_<secret>` → `<id>`.
fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some(id)
}

fn read_file(path: &Path) -> anyhow::Result<KeyFile> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("invalid key store {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Replaces the file atomically (write, fsync, rename, fsync the directory), owner-only.
fn write_file(path: &Path, file: &KeyFile) -> anyhow::Result<()> {
    let dir = path.parent().context("key store has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    out.write_all(&serde_json::to_vec_pretty(file)?)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

/// Makes a new key for `tenant` with `role`, stores its hash, and returns the entry and the
/// key — the only time the key is seen.
pub fn create(path: &Path, tenant: &str, role: Role) -> anyhow::Result<(KeyEntry, String)> {
    silt_storage::layout::validate_name("tenant", tenant)?;
    let _lock = lock_store(path)?;
    let mut file = read_file(path)?;
    let id = loop {
        let id = hex(&rand::random::<[u8; 6]>());
        if !file.keys.iter().any(|k| k.id == id) {
            break id;
        }
    };
    let key = format!("{KEY_PREFIX}_{id}_{}", hex(&rand::random::<[u8; 24]>()));
    let entry = KeyEntry {
        id,
        tenant: tenant.to_string(),
        role,
        hash: blake3::hash(key.as_bytes()).to_hex().to_string(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    file.keys.push(entry.clone());
    write_file(path, &file)?;
    Ok((entry, key))
}

pub fn list(path: &Path) -> anyhow::Result<Vec<KeyEntry>> {
    Ok(read_file(path)?.keys)
}

/// Removes the key with `id`; errors when there is none.
pub fn revoke(path: &Path, id: &str) -> anyhow::Result<KeyEntry> {
    let _lock = lock_store(path)?;
    let mut file = read_file(path)?;
    let Some(pos) = file.keys.iter().position(|k| k.id == id) else {
        bail!("no key with id '{id}' (see `silt keys list`)");
    };
    let entry = file.keys.remove(pos);
    write_file(path, &file)?;
    Ok(entry)
}

/// An exclusive lock on `keys.json.lock`, so concurrent `silt keys` runs do not lose changes.
fn lock_store(path: &Path) -> anyhow::Result<std::fs::File> {
    let dir = path.parent().context("key store has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = path.with_extension("json.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    Ok(file)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keys_check_and_revoked_keys_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = keys_path(dir.path());
        let (entry, key) = create(&path, "acme", Role::Read).unwrap();
        let (_, other) = create(&path, "beta", Role::Ingest).unwrap();
        let index = KeyIndex::load(&path).unwrap();
        assert_eq!(index.check(&key), KeyCheck::Valid(&entry));
        assert_eq!(index.len(), 2);
        // Right id, wrong secret.
        let forged = format!("{}x", &key[..key.len() - 1]);
        assert_eq!(index.check(&forged), KeyCheck::Invalid);
        assert_eq!(index.check("nonsense"), KeyCheck::Invalid);
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&key));

        revoke(&path, &entry.id).unwrap();
        let index = KeyIndex::load(&path).unwrap();
        assert_eq!(index.check(&key), KeyCheck::Invalid);
        assert!(matches!(index.check(&other), KeyCheck::Valid(e) if e.tenant == "beta"));
        assert!(revoke(&path, &entry.id).is_err());
    }

    #[test]
    fn invalid_tenant_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(create(&keys_path(dir.path()), "../etc", Role::Admin).is_err());
    }
}

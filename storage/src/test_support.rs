//! For tests that need a real full disk: the test binary runs one of its tests again inside a
//! private user and mount namespace (`unshare`), where that test may mount a small tmpfs.

use std::path::Path;
use std::process::Command;

/// Runs the test named `test` (as libtest names it) of the current test binary again inside a
/// private user and mount namespace, with the environment variable `env` set to `dir`, and
/// panics if it fails. Returns `false`, saying so on stderr, where `unshare` is missing or such
/// namespaces are not permitted; the caller then has nothing to check.
pub fn rerun_in_mount_namespace(test: &str, env: &str, dir: &Path) -> bool {
    let unshare = ["--user", "--map-root-user", "--mount"];
    let probe = Command::new("unshare").args(unshare).arg("true").output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "not run: needs `unshare {}` to mount a small tmpfs ({probe:?})",
            unshare.join(" ")
        );
        return false;
    }
    let status = Command::new("unshare")
        .args(unshare)
        .arg(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .status()
        .expect("run unshare");
    assert!(status.success(), "{test} failed inside the namespace");
    true
}

/// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `4m`) on `dir`, creating `dir`; for
/// the test run by [`rerun_in_mount_namespace`].
pub fn mount_tmpfs(dir: &Path, size: &str) {
    std::fs::create_dir_all(dir).expect("create the mount point");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount a tmpfs on {}", dir.display());
}

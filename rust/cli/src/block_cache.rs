//! `credential-process --cache-file`: one set of credentials shared by every AWS process of a
//! `withAwsRole(refresh: true)` block (docs/refresh.md). An SDK starts awsrole for every process
//! (and again near expiry); without a cache each run is a Vault call and an STS AssumeRole, so a
//! block that runs 500 `aws` commands would make 500.
//!
//! The cache is one file in the block's private directory (0700, created by the step, removed
//! with the block). Runs take an exclusive `flock` on `<file>.lock` while they read, and while
//! they fetch and write: concurrent processes wait for one fetch instead of each making their own.
//! The file is replaced by rename, so a reader never sees half of it, and is handed out only
//! while at least [`margin`] of its lifetime is left (SDKs refuse credentials about to expire).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use withawsrole_core::clock::Clock;

/// botocore (the aws CLI, boto3) refuses credentials within 10 minutes of expiry (its mandatory
/// refresh) and refreshes within 15 (advisory): handing out at least 11 minutes keeps the first
/// from failing, 15 spares long-running processes the advisory re-runs when the ttl allows it.
const MIN_MARGIN: Duration = Duration::from_secs(11 * 60);
const MAX_MARGIN: Duration = Duration::from_secs(15 * 60);

/// How long before expiry cached credentials stop being handed out: half the lease, within
/// 11..15 minutes. With a 15-minute ttl a set serves 4 minutes, with 30 minutes 15, with 1 h 45.
pub fn margin(lease: Duration) -> Duration {
    (lease / 2).clamp(MIN_MARGIN, MAX_MARGIN)
}

/// Credentials as the cache holds them: what `credential_process` prints, and when they expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The credential_process JSON (Version 1), printed as it is.
    pub output: String,
    pub expires_at: SystemTime,
    pub lease: Duration,
}

/// Why the cache could not be used; the run fails with exit code 6 (a setup problem).
#[derive(Debug)]
pub struct CacheFileError(pub String);

/// The cached credentials when fresh for `request` (the command line that asked), else those
/// `fetch` returns, written to the cache first. `fetch`'s own error (an exit code) passes through.
pub fn cached_or_fetch<E>(
    path: &Path,
    request: &str,
    clock: &dyn Clock,
    fetch: impl FnOnce() -> Result<Cached, E>,
) -> Result<Result<String, E>, CacheFileError> {
    check_private_directory(path)?;
    let lock = open_private(&lock_path(path), false)?;
    let _held = Lock::exclusive(&lock, path)?;
    if let Some(cached) = read(path, request) {
        if clock.now() + margin(cached.lease) < cached.expires_at {
            return Ok(Ok(cached.output));
        }
    }
    let fresh = match fetch() {
        Ok(fresh) => fresh,
        Err(e) => return Ok(Err(e)),
    };
    write(path, request, &fresh)?;
    Ok(Ok(fresh.output))
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Keys on disk must not be readable by anyone else on the agent: the directory must be ours and
/// closed to group and others (the step creates it so; a shared directory is refused).
fn check_private_directory(path: &Path) -> Result<(), CacheFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| {
        CacheFileError(format!(
            "cannot use the cache file {}: its directory: {e}",
            path.display()
        ))
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(CacheFileError(format!(
            "refusing the cache file {}: its directory must be a directory of this user that \
             no one else can read (mode 0700); use a private directory such as the one \
             withAwsRole(refresh: true) creates",
            path.display()
        )));
    }
    Ok(())
}

/// Opens (creating, 0600) a file without following a symlink at its place.
fn open_private(path: &Path, truncate_new: bool) -> Result<File, CacheFileError> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if truncate_new {
        options.create_new(true);
    } else {
        options.create(true);
    }
    options
        .open(path)
        .map_err(|e| CacheFileError(format!("cannot open {}: {e}", path.display())))
}

/// An exclusive `flock`, released when dropped (and by the kernel if the process dies).
struct Lock<'a>(&'a File);

impl<'a> Lock<'a> {
    fn exclusive(file: &'a File, path: &Path) -> Result<Self, CacheFileError> {
        loop {
            // SAFETY: the descriptor is open for the lifetime of `file`.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Lock(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(CacheFileError(format!(
                    "cannot lock the cache file {}: {e}",
                    path.display()
                )));
            }
        }
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking an open descriptor cannot corrupt anything.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The cached entry for `request`, or None (no file, another request, or unreadable: then the
/// run fetches and replaces it).
fn read(path: &Path, request: &str) -> Option<Cached> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    if value["request"].as_str()? != request {
        return None;
    }
    Some(Cached {
        output: value["credential_process"]
            .as_object()
            .map(|o| Value::Object(o.clone()).to_string())?,
        expires_at: UNIX_EPOCH + Duration::from_secs(value["expires_at"].as_u64()?),
        lease: Duration::from_secs(value["lease_seconds"].as_u64()?),
    })
}

/// Writes the entry to a new file beside the cache and renames it into place.
fn write(path: &Path, request: &str, fresh: &Cached) -> Result<(), CacheFileError> {
    let output: Value = serde_json::from_str(&fresh.output)
        .map_err(|e| CacheFileError(format!("cannot cache an answer that is not JSON: {e}")))?;
    let expires_at = fresh
        .expires_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let entry = json!({
        "request": request,
        "expires_at": expires_at,
        "lease_seconds": fresh.lease.as_secs(),
        "credential_process": output,
    });
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.new", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let written = open_private(&temporary, true).and_then(|mut file| {
        file.write_all(entry.to_string().as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| CacheFileError(format!("cannot write {}: {e}", temporary.display())))
    });
    let renamed = written.and_then(|()| {
        std::fs::rename(&temporary, path)
            .map_err(|e| CacheFileError(format!("cannot replace {}: {e}", path.display())))
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use withawsrole_core::ManualClock;

    const NOW: u64 = 1_800_000_000;

    fn private_dir(name: &str) -> PathBuf {
        let dir = withawsrole_testkit::temp_dir(name);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    fn issued(clock: &ManualClock, n: u32, lease_seconds: u64) -> Cached {
        let lease = Duration::from_secs(lease_seconds);
        Cached {
            output: json!({"Version": 1, "AccessKeyId": format!("KEY{n}")}).to_string(),
            expires_at: clock.now() + lease,
            lease,
        }
    }

    /// Runs of one test: a cache file in a private directory of its own (removed when dropped),
    /// a manual clock, and the fetches counted.
    struct Runs {
        dir: PathBuf,
        path: PathBuf,
        clock: ManualClock,
        fetches: AtomicU32,
    }

    impl Runs {
        fn new(name: &str) -> Self {
            let dir = private_dir(name);
            Runs {
                path: dir.join("cache.json"),
                dir,
                clock: ManualClock::at_epoch_seconds(NOW),
                fetches: AtomicU32::new(0),
            }
        }

        /// One run: the printed output.
        fn run(&self, request: &str, lease: u64) -> String {
            cached_or_fetch::<u8>(&self.path, request, &self.clock, || {
                let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(issued(&self.clock, n, lease))
            })
            .unwrap()
            .unwrap()
        }

        fn fetches(&self) -> u32 {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    impl Drop for Runs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn runs_share_one_fetch_until_the_margin_before_expiry() {
        let runs = Runs::new("share");
        // ttl 30 min: margin 15 min, so one set serves for 15 minutes.
        for _ in 0..50 {
            assert!(runs.run("deploy", 1800).contains("KEY1"));
        }
        runs.clock.advance(Duration::from_secs(15 * 60 - 1));
        assert!(runs.run("deploy", 1800).contains("KEY1"));
        runs.clock.advance(Duration::from_secs(1));
        assert!(runs.run("deploy", 1800).contains("KEY2"));
        assert_eq!(runs.fetches(), 2);
    }

    #[test]
    fn the_margin_keeps_botocore_above_its_mandatory_refresh_and_below_the_lease() {
        for (lease, kept_back) in [(900, 660), (1800, 900), (3600, 900), (1500, 750)] {
            let margin = margin(Duration::from_secs(lease));
            assert_eq!(margin, Duration::from_secs(kept_back), "{lease}");
        }
    }

    #[test]
    fn another_request_or_a_broken_file_is_fetched_anew() {
        let runs = Runs::new("other");
        runs.run("deploy --ttl 3600", 3600);
        assert!(runs.run("deploy --ttl 1800", 1800).contains("KEY2"));
        std::fs::write(&runs.path, "{not json").unwrap();
        assert!(runs.run("deploy --ttl 1800", 1800).contains("KEY3"));
        assert_eq!(runs.fetches(), 3);
    }

    #[test]
    fn a_failed_fetch_leaves_the_cache_as_it_was_and_passes_its_error_on() {
        let runs = Runs::new("failed");
        let outcome = cached_or_fetch::<u8>(&runs.path, "deploy", &runs.clock, || Err(4)).unwrap();
        assert_eq!(outcome, Err(4));
        assert!(!runs.path.exists(), "nothing cached");
        let names: Vec<_> = std::fs::read_dir(&runs.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["cache.json.lock"], "no half-written file");
    }

    #[test]
    fn the_cache_file_is_private_and_a_shared_directory_is_refused() {
        let runs = Runs::new("mode");
        runs.run("deploy", 900);
        let mode = std::fs::metadata(&runs.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let shared = Runs::new("shared");
        std::fs::set_permissions(&shared.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = cached_or_fetch::<u8>(&shared.path, "deploy", &shared.clock, || {
            panic!("must not fetch")
        })
        .unwrap_err();
        assert!(e.0.contains("no one else can read"), "{}", e.0);
        let written = std::fs::read_dir(&shared.dir).unwrap().count();
        assert_eq!(written, 0, "nothing written");
    }

    #[test]
    fn a_symlink_in_place_of_the_cache_file_is_not_followed() {
        let runs = Runs::new("symlink");
        let target = runs.dir.join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, &runs.path).unwrap();
        // The link is replaced by the rename, never written through.
        runs.run("deploy", 900);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        let kind = std::fs::symlink_metadata(&runs.path).unwrap().file_type();
        assert!(!kind.is_symlink());
    }

    #[test]
    fn concurrent_runs_wait_for_one_fetch() {
        let runs = Arc::new(Runs::new("concurrent"));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let runs = runs.clone();
                std::thread::spawn(move || {
                    cached_or_fetch::<u8>(&runs.path, "deploy", &runs.clock, || {
                        // Hold the lock a while, as a Vault call would.
                        std::thread::sleep(Duration::from_millis(50));
                        let n = runs.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                        Ok(issued(&runs.clock, n, 1800))
                    })
                    .unwrap()
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().contains("KEY1"));
        }
        assert_eq!(runs.fetches(), 1);
    }
}

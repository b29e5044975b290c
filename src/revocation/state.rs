//! The state file of `auth_jwt_revocation_zone … state=FILE`: the list as `GET` answers it
//! (a JSON array, `jwt_core::revocation::to_json`), read when the configuration is (so that
//! `nginx -t` names a file it cannot use) and written after each change.
//!
//! A write goes to a new temporary file beside the state file (its owner's only), is flushed to
//! disk, and replaces the state file by a rename: a crash leaves the old list or the new one, never a mix. Two
//! workers' writes replace the file in the order of the changes they record.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use jwt_core::revocation::{parse_entries, to_json, Entry};

use super::zone::Table;

/// The entries of the state file at `path`; none when it does not exist yet (a first start).
pub fn load(path: &str) -> Result<Vec<Entry>, String> {
    let body = match fs::read(path) {
        Ok(body) => body,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read state file \"{path}\": {e}")),
    };
    parse_entries(&body, None).map_err(|e| format!("state file \"{path}\" is corrupt: {e}"))
}

/// Writes `entries`, the list at `version` of `table`, to the state file at `path`, unless
/// a later version is there already.
pub fn save(path: &str, table: &Table, entries: &[Entry], version: u64) -> Result<(), String> {
    let tmp = tmp_name(path);
    let written = write_synced(&tmp, to_json(entries).as_bytes());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot write \"{tmp}\": {e}"));
    }
    let lock = table.lock().ok_or("the zone is not ready")?;
    if !table.newer_than_written(&lock, version) {
        drop(lock);
        let _ = fs::remove_file(&tmp);
        return Ok(());
    }
    let renamed = fs::rename(&tmp, path);
    if renamed.is_ok() {
        table.set_written(&lock, version);
    }
    drop(lock);
    if let Err(e) = renamed {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot rename \"{tmp}\" to \"{path}\": {e}"));
    }
    // The rename itself is durable once the directory is.
    if let Some(dir) = Path::new(path).parent() {
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Whether this process may write the state file at `path`: it writes a temporary file beside
/// it, as `save` does, and removes it.
pub fn writable(path: &str) -> Result<(), String> {
    let tmp = tmp_name(path);
    write_synced(&tmp, b"")
        .and_then(|()| fs::remove_file(&tmp))
        .map_err(|e| format!("cannot write \"{tmp}\": {e}"))
}

/// A temporary file's name beside `path`, never the same twice in a process.
fn tmp_name(path: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{path}.{}.{nanos:09}.tmp", std::process::id())
}

/// Writes a new file at `path` (never an existing one, nor through a link planted there),
/// readable by its owner only, and flushes it to disk.
fn write_synced(path: &str, body: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(body)?;
    file.sync_all()
}

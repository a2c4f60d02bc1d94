//! The misc service's picture store: pictures uploaded to the monolith after it started,
//! copied here by the thumbnail worker (`worker::thumbnails`) from the monolith's
//! `shop.image.uploaded` events, with their standard-size thumbnails rendered ahead of time.
//!
//! A folder on disk, so the store outlives a restart just as the worker's bus position does
//! (the two must agree: a position past an event whose picture is gone would lose it):
//!
//! ```text
//! <dir>/<image id>/original        the bytes the monolith serves at /images/<id>
//! <dir>/<image id>/<w>x<h>.png     a thumbnail rendered ahead of time
//! <dir>/processed-events           ids of the events already handled, one per line
//! ```
//!
//! Every file is written to a temporary name and renamed into place, so a reader never sees
//! half a picture. A picture uploaded again under the same id replaces the old one.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The name of the processed-events file.
const PROCESSED: &str = "processed-events";
/// The name of a picture's original bytes.
const ORIGINAL: &str = "original";

/// A disk operation on the store failed.
#[derive(Debug, thiserror::Error)]
#[error("picture store {path}: cannot {action}: {source}; check the folder exists and is writable")]
pub struct PictureError {
    /// What was being done.
    action: &'static str,
    /// The file or folder.
    path: PathBuf,
    /// What the system said.
    #[source]
    source: std::io::Error,
}

impl PictureError {
    fn at(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PictureError {
        let path = path.to_owned();
        move |source| PictureError {
            action,
            path,
            source,
        }
    }
}

/// Uploaded pictures and their thumbnails, in a folder. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct PictureStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The store's folder.
    dir: PathBuf,
    /// Ids of the events already handled (the processed-events file, in memory).
    processed: Mutex<HashSet<String>>,
}

impl PictureStore {
    /// Opens (creating) the store in `dir` and reads which events it has handled.
    pub fn open(dir: &Path) -> Result<PictureStore, PictureError> {
        std::fs::create_dir_all(dir).map_err(PictureError::at("create", dir))?;
        let file = dir.join(PROCESSED);
        let processed = match std::fs::read_to_string(&file) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
            Err(e) => return Err(PictureError::at("read", &file)(e)),
        };
        Ok(PictureStore {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                processed: Mutex::new(processed),
            }),
        })
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether the event `id` was handled already (a redelivery or a replay).
    pub fn was_processed(&self, event_id: &str) -> bool {
        self.processed().contains(event_id)
    }

    /// Records the event `id` as handled, on disk before returning.
    pub fn mark_processed(&self, event_id: &str) -> Result<(), PictureError> {
        let mut processed = self.processed();
        if processed.contains(event_id) {
            return Ok(());
        }
        let file = self.inner.dir.join(PROCESSED);
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(PictureError::at("open", &file))?;
        writeln!(out, "{event_id}").map_err(PictureError::at("append to", &file))?;
        processed.insert(event_id.to_owned());
        Ok(())
    }

    /// Stores picture `id`: its original bytes and thumbnails (`(w, h)` → PNG), replacing
    /// what an earlier upload under the same id left. Thumbnails go first, the original last:
    /// a picture counts as stored once its original is there.
    pub fn save(
        &self,
        id: &str,
        original: &[u8],
        thumbnails: &[((u32, u32), Vec<u8>)],
    ) -> Result<(), PictureError> {
        let folder = self.folder(id).ok_or_else(|| PictureError {
            action: "store a picture with this id",
            path: self.inner.dir.join(id),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a picture id"),
        })?;
        std::fs::create_dir_all(&folder).map_err(PictureError::at("create", &folder))?;
        for ((w, h), png) in thumbnails {
            write_atomically(&folder.join(thumbnail_name(*w, *h)), png)?;
        }
        write_atomically(&folder.join(ORIGINAL), original)
    }

    /// The original bytes of picture `id`, if stored.
    pub fn original(&self, id: &str) -> Result<Option<Vec<u8>>, PictureError> {
        let Some(folder) = self.folder(id) else {
            return Ok(None);
        };
        read_if_there(&folder.join(ORIGINAL))
    }

    /// The thumbnail of picture `id` rendered ahead of time at `w`×`h`, if there is one.
    pub fn thumbnail(&self, id: &str, w: u32, h: u32) -> Result<Option<Vec<u8>>, PictureError> {
        let Some(folder) = self.folder(id) else {
            return Ok(None);
        };
        read_if_there(&folder.join(thumbnail_name(w, h)))
    }

    /// The folder of picture `id`; `None` for an id that is not a plain name (no `..`, `/`).
    fn folder(&self, id: &str) -> Option<PathBuf> {
        let plain = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        plain.then(|| self.inner.dir.join(id))
    }

    fn processed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // Each change is one insert after a completed append: consistent even if poisoned.
        self.inner
            .processed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// `<w>x<h>.png`.
fn thumbnail_name(w: u32, h: u32) -> String {
    format!("{w}x{h}.png")
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PictureError> {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, bytes).map_err(PictureError::at("write", &temp))?;
    std::fs::rename(&temp, path).map_err(PictureError::at("rename into", path))
}

/// The file's bytes, or `None` when it does not exist.
fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>, PictureError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PictureError::at("read", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_and_processed_events_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = PictureStore::open(dir.path()).unwrap();
        store
            .save("img-4", b"orig", &[((128, 128), b"thumb".to_vec())])
            .unwrap();
        store.mark_processed("ev-1").unwrap();
        store.mark_processed("ev-1").unwrap();

        let again = PictureStore::open(dir.path()).unwrap();
        assert!(again.was_processed("ev-1") && !again.was_processed("ev-2"));
        assert_eq!(again.original("img-4").unwrap().unwrap(), b"orig");
        assert_eq!(
            again.thumbnail("img-4", 128, 128).unwrap().unwrap(),
            b"thumb"
        );
        assert!(again.thumbnail("img-4", 10, 10).unwrap().is_none());
        assert!(again.original("img-5").unwrap().is_none());
        let lines = std::fs::read_to_string(dir.path().join(PROCESSED)).unwrap();
        assert_eq!(lines, "ev-1\n");
    }

    #[test]
    fn ids_that_are_not_plain_names_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let store = PictureStore::open(dir.path()).unwrap();
        assert!(store.original("../etc").unwrap().is_none());
        assert!(store.save("a/b", b"x", &[]).is_err());
    }
}

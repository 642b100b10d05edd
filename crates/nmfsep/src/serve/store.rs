//! Files of the data folder, all under names the server makes (no user string ever becomes
//! a path):
//!
//! - `nmfsep.sqlite`: the tables ([`super::db`]);
//! - `lock`: locked by the running server, so that two never share a folder;
//! - `tmp/`: uploads being received (emptied at start);
//! - `dictionaries/ID.npz`: learned dictionaries, in the format of `nmfsep learn`;
//! - `jobs/ID/mixture.EXT`: a job's input (EXT from a fixed list of audio extensions);
//! - `jobs/ID/stems/sI.wav`: its outputs, `I` the output's index (names are in the table);
//! - `jobs/ID/stems.zip`: the outputs under their names.
//!
//! Files are written under a temporary name and renamed into place.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Length of an id: 128 random bits in lowercase hexadecimal.
const ID_LEN: usize = 32;

/// A new random id (128 bits from the operating system's generator).
///
/// # Panics
/// If the operating system has no random source.
pub fn new_id() -> String {
    let mut b = [0u8; ID_LEN / 2];
    getrandom::getrandom(&mut b).expect("the operating system's random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// True if `s` has the form of an id ([`new_id`]); anything else is unknown (404).
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The data folder's layout.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    /// `DATA_DIR/lock`, held locked while the server runs (one server per folder).
    _lock: Option<std::sync::Arc<std::fs::File>>,
}

/// Locks `DATA_DIR/lock` for this process (released by the system when it ends, even when
/// killed).
///
/// # Errors
/// If another process holds it: another server uses the folder.
fn lock_folder(root: &Path) -> Result<std::fs::File> {
    let path = root.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            anyhow::bail!(
                "another nmfsep serve is using the data folder {}; stop it or give another --data-dir",
                root.display()
            );
        }
    }
    Ok(f)
}

/// Audio extensions kept on an upload (others are dropped: the decoder probes the content).
const AUDIO_EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "oga", "wave"];

/// The extension to store an upload called `file_name` under: its own if it is a known audio
/// extension, else `bin`.
pub fn upload_extension(file_name: Option<&str>) -> &'static str {
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    AUDIO_EXTENSIONS
        .iter()
        .find(|e| Some(**e) == ext.as_deref())
        .copied()
        .unwrap_or("bin")
}

impl Store {
    /// Creates the folders under `root` and empties `tmp/`.
    ///
    /// # Errors
    /// If a folder cannot be created.
    pub fn open(root: &Path) -> Result<Store> {
        let mut s = Store {
            root: root.to_path_buf(),
            _lock: None,
        };
        for d in [
            s.root.clone(),
            s.tmp_dir(),
            s.root.join("dictionaries"),
            s.root.join("jobs"),
        ] {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create folder {}", d.display()))?;
        }
        s._lock = Some(std::sync::Arc::new(lock_folder(root)?));
        if let Ok(entries) = std::fs::read_dir(s.tmp_dir()) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
        Ok(s)
    }

    /// `msg` with each of `names`' paths replaced by its label and any other path of the
    /// data folder shortened to `DATA_DIR/...`: error messages of the command line shown to
    /// clients tell what went wrong without telling where the server keeps its files.
    pub fn redact(&self, msg: &str, names: &[(&Path, &str)]) -> String {
        let mut out = msg.to_string();
        for (path, label) in names {
            out = out.replace(&path.display().to_string(), label);
        }
        out.replace(&self.root.display().to_string(), "DATA_DIR")
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("nmfsep.sqlite")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh temporary file name in `tmp/` with extension `ext`.
    pub fn tmp_file(&self, ext: &str) -> PathBuf {
        self.tmp_dir().join(format!("{}.{ext}", new_id()))
    }

    pub fn dictionary(&self, id: &str) -> PathBuf {
        debug_assert!(is_id(id));
        self.root.join("dictionaries").join(format!("{id}.npz"))
    }

    pub fn job_dir(&self, id: &str) -> PathBuf {
        debug_assert!(is_id(id));
        self.root.join("jobs").join(id)
    }

    /// The job's stored mixture (its extension is found in the folder).
    pub fn mixture(&self, id: &str) -> Option<PathBuf> {
        let dir = self.job_dir(id);
        AUDIO_EXTENSIONS
            .iter()
            .chain(std::iter::once(&"bin"))
            .map(|e| dir.join(format!("mixture.{e}")))
            .find(|p| p.is_file())
    }

    pub fn stems_dir(&self, id: &str) -> PathBuf {
        self.job_dir(id).join("stems")
    }

    /// File of output `index` of job `id`.
    pub fn stem(&self, id: &str, index: usize) -> PathBuf {
        self.stems_dir(id).join(format!("{}.wav", stem_key(index)))
    }

    pub fn zip(&self, id: &str) -> PathBuf {
        self.job_dir(id).join("stems.zip")
    }
}

/// The name output `index` has on the `nmfsep separate` command line and on disk.
pub fn stem_key(index: usize) -> String {
    format!("s{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert!(is_id(&a) && is_id(&b) && a != b);
        assert!(!is_id("../../etc/passwd"));
        assert!(!is_id(&a.to_uppercase()));
    }

    #[test]
    fn redacts_paths() {
        let s = Store {
            root: PathBuf::from("/srv/data"),
            _lock: None,
        };
        let clip = PathBuf::from("/srv/data/tmp/ab.wav");
        assert_eq!(
            s.redact(
                "/srv/data/tmp/ab.wav is silent; /srv/data/x",
                &[(&clip, "the clip")]
            ),
            "the clip is silent; DATA_DIR/x"
        );
    }

    #[test]
    fn upload_extensions_come_from_the_list() {
        assert_eq!(upload_extension(Some("Mix.WAV")), "wav");
        assert_eq!(upload_extension(Some("x.sh")), "bin");
        assert_eq!(upload_extension(Some("../../a")), "bin");
        assert_eq!(upload_extension(None), "bin");
    }
}

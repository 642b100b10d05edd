//! All-or-nothing output: files are written under temporary names next to their final place
//! and renamed into place only once everything succeeded. A failed command leaves no file.
//!
//! - [`StagedDir`]: an output folder. Files go to a hidden staging folder in the output
//!   folder's parent (`.nmfsep-<pid>-<n>.tmp`); on commit, the staging folder becomes the
//!   output folder if that did not exist, or its files are moved into the existing one.
//! - [`StagedFile`]: one output file, written as `.nmfsep-<pid>-<name>` in the same folder
//!   (same extension, so format detection by extension still works) and renamed on commit.
//!
//! Both create their folder if it is missing and its parent exists (`-o out/` and
//! `-o out/piano.npz` alike), and only on commit.
//!
//! Both remove their temporary files when dropped without a commit. A process killed
//! mid-way may leave a hidden `.nmfsep-*` entry behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, bail, Context, Result};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(tag: &str) -> String {
    format!(
        ".nmfsep-{}-{}{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An output folder filled through a staging folder.
#[derive(Debug)]
pub struct StagedDir {
    final_dir: PathBuf,
    staging: PathBuf,
    files: Vec<String>,
    done: bool,
}

impl StagedDir {
    /// Checks that `dir` can be written (it may not exist yet, but its parent must) and
    /// creates the staging folder.
    ///
    /// # Errors
    /// If `dir` exists and is not a folder, its parent folder is missing, or either cannot be
    /// written.
    pub fn new(dir: &Path) -> Result<Self> {
        let shown = dir.display();
        if dir.exists() && !dir.is_dir() {
            bail!("output folder {shown} exists and is not a folder");
        }
        let parent = parent_of(dir);
        if !parent.is_dir() {
            bail!(
                "cannot create output folder {shown}: folder {} does not exist",
                parent.display()
            );
        }
        let staging = parent.join(unique(".tmp"));
        std::fs::create_dir(&staging)
            .with_context(|| format!("cannot write output folder {shown}"))?;
        let staged = Self {
            final_dir: dir.to_path_buf(),
            staging,
            files: Vec::new(),
            done: false,
        };
        if dir.is_dir() {
            let probe = dir.join(unique(".probe"));
            std::fs::write(&probe, b"")
                .with_context(|| format!("cannot write to output folder {shown}"))?;
            let _ = std::fs::remove_file(&probe);
        }
        Ok(staged)
    }

    /// The temporary path of the output file `name` (a plain file name).
    pub fn file(&mut self, name: &str) -> PathBuf {
        self.files.push(name.to_string());
        self.staging.join(name)
    }

    /// The final folder.
    pub fn path(&self) -> &Path {
        &self.final_dir
    }

    /// Moves the staged files into place. On error, files already moved are removed again.
    pub fn commit(mut self) -> Result<()> {
        let shown = self.final_dir.display().to_string();
        if !self.final_dir.exists() {
            std::fs::rename(&self.staging, &self.final_dir)
                .with_context(|| format!("cannot create output folder {shown}"))?;
            self.done = true;
            return Ok(());
        }
        let mut moved: Vec<PathBuf> = Vec::new();
        for name in &self.files {
            let to = self.final_dir.join(name);
            if let Err(e) = std::fs::rename(self.staging.join(name), &to) {
                for m in &moved {
                    let _ = std::fs::remove_file(m);
                }
                return Err(anyhow!("cannot write {}: {e}", to.display()));
            }
            moved.push(to);
        }
        self.done = true;
        let _ = std::fs::remove_dir_all(&self.staging);
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// One output file written under a temporary name in its final folder.
#[derive(Debug)]
pub struct StagedFile {
    final_path: PathBuf,
    tmp: PathBuf,
    /// The missing folder of `final_path`, created on commit.
    create: Option<PathBuf>,
    done: bool,
}

impl StagedFile {
    /// Creates the (empty) temporary file, which checks that `path` can be written. A missing
    /// folder of `path` whose parent exists is created on commit (the temporary file waits in
    /// that parent).
    ///
    /// # Errors
    /// If `path` is a folder, or its folder and that folder's parent do not exist, or cannot
    /// be written.
    pub fn new(path: &Path) -> Result<Self> {
        let shown = path.display();
        if path.is_dir() {
            bail!("output {shown} is a folder, expected a file name");
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("output {shown} has no file name"))?;
        let parent = parent_of(path);
        let (staging, create) = if parent.is_dir() {
            (parent, None)
        } else if !parent.exists() && parent_of(&parent).is_dir() {
            (parent_of(&parent), Some(parent))
        } else {
            bail!(
                "cannot write {shown}: folder {} does not exist",
                parent_of(&parent).display()
            );
        };
        let tmp = staging.join(unique(&format!("-{name}")));
        std::fs::write(&tmp, b"").with_context(|| format!("cannot write {shown}"))?;
        Ok(Self {
            final_path: path.to_path_buf(),
            tmp,
            create,
            done: false,
        })
    }

    /// The temporary path to write to.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary file to the final path.
    pub fn commit(mut self) -> Result<()> {
        if let Some(dir) = &self.create {
            match std::fs::create_dir(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(e)
                        .with_context(|| format!("cannot create folder {}", dir.display()))
                }
                _ => {}
            }
        }
        std::fs::rename(&self.tmp, &self.final_path)
            .with_context(|| format!("cannot write {}", self.final_path.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

//! The stems archive (`stems.zip`): every output as `NAME.wav`, stored without compression
//! (float WAV barely compresses), written under a temporary name and renamed into place.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Writes `entries` (`(name, file)`: the file goes in as `name.wav`) to the archive `dest`.
///
/// # Errors
/// If a file cannot be read or the archive written (then no archive is left).
pub fn write_zip(dest: &Path, entries: &[(String, PathBuf)]) -> Result<()> {
    let tmp = dest.with_extension("zip.tmp");
    let result = (|| -> Result<()> {
        let mut zip = ZipWriter::new(BufWriter::new(File::create(&tmp)?));
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(false);
        for (name, path) in entries {
            zip.start_file(format!("{name}.wav"), opts)?;
            let mut f =
                File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            std::io::copy(&mut f, &mut zip)?;
        }
        let mut w = zip.finish()?;
        w.flush()?;
        w.into_inner()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .sync_all()?;
        std::fs::rename(&tmp, dest)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.context("cannot write the stems archive")
}

//! An Open-Unmix model folder in the layout `openunmix.utils.load_separator` reads:
//! `separator.json` (`sample_rate`, `nfft`, `nhop`, `nb_channels`) and per target
//! `TARGET.json` (`args.nfft`, `args.nb_channels`, `args.hidden_size`) with the first file
//! `TARGET*.pth` in name order (the published files are named like `vocals-b62c91ce.pth`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::model::OpenUnmix;

/// Name of the file that marks a folder as an Open-Unmix model.
pub const SEPARATOR_JSON: &str = "separator.json";

/// `separator.json`: the STFT shared by all targets.
#[derive(Debug, Clone, Deserialize)]
pub struct SeparatorConfig {
    /// Sample rate the models were trained at, Hz.
    pub sample_rate: f64,
    /// STFT frame length, samples.
    pub nfft: usize,
    /// STFT hop, samples.
    pub nhop: usize,
    /// Audio channels the models take.
    pub nb_channels: usize,
}

#[derive(Debug, Deserialize)]
struct TargetArgs {
    nfft: usize,
    nb_channels: usize,
    hidden_size: usize,
}

#[derive(Debug, Deserialize)]
struct TargetJson {
    args: TargetArgs,
}

/// A loaded model folder: the STFT settings and one network per target.
#[derive(Debug)]
pub struct ModelFolder {
    /// The folder.
    pub dir: PathBuf,
    /// `separator.json`.
    pub config: SeparatorConfig,
    /// (target name, network), in the order asked for (or name order).
    pub targets: Vec<(String, OpenUnmix)>,
}

/// True if `dir` is a folder holding `separator.json`.
pub fn is_model_folder(dir: &Path) -> bool {
    dir.is_dir() && dir.join(SEPARATOR_JSON).is_file()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a valid file", path.display()))
}

/// The targets of `dir`: every `NAME.json` other than `separator.json` that has a
/// `NAME*.pth` beside it, in name order.
///
/// # Errors
/// If the folder cannot be listed.
pub fn list_targets(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(stem) = file.strip_suffix(".json") {
            if file != SEPARATOR_JSON && weights_file(dir, stem)?.is_some() {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The first `TARGET*.pth` of `dir` in name order, as Python's glob `TARGET*.pth`.
fn weights_file(dir: &Path, target: &str) -> Result<Option<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(target) && n.ends_with(".pth"))
        })
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}

impl ModelFolder {
    /// Loads `dir` with the `targets` named (all of the folder's when empty).
    ///
    /// # Errors
    /// A missing or invalid JSON file, a target without weights, settings that disagree
    /// between `separator.json` and a target, or weights that do not read (the message names
    /// the file and tensor).
    pub fn load(dir: &Path, targets: &[String]) -> Result<Self> {
        let config: SeparatorConfig = read_json(&dir.join(SEPARATOR_JSON))?;
        if !(config.sample_rate.is_finite() && config.sample_rate >= 1.0) {
            bail!(
                "{}: sample_rate must be positive",
                dir.join(SEPARATOR_JSON).display()
            );
        }
        if config.nfft < 16
            || !config.nfft.is_multiple_of(2)
            || config.nhop == 0
            || config.nhop > config.nfft / 2
        {
            bail!(
                "{}: nfft {} and nhop {} are not usable (even nfft, 1 <= nhop <= nfft / 2)",
                dir.join(SEPARATOR_JSON).display(),
                config.nfft,
                config.nhop
            );
        }
        if !(config.nb_channels == 1 || config.nb_channels == 2) {
            bail!(
                "{}: nb_channels {} is not supported (1 or 2)",
                dir.join(SEPARATOR_JSON).display(),
                config.nb_channels
            );
        }
        let names = if targets.is_empty() {
            list_targets(dir)?
        } else {
            targets.to_vec()
        };
        if names.is_empty() {
            bail!(
                "{}: no target (NAME.json with NAME*.pth) in the folder",
                dir.display()
            );
        }
        let mut loaded = Vec::with_capacity(names.len());
        for name in names {
            let json = dir.join(format!("{name}.json"));
            if !json.is_file() {
                let known = list_targets(dir)?.join(", ");
                bail!(
                    "{}: no target {name:?} (the folder has: {known})",
                    dir.display()
                );
            }
            let t: TargetJson = read_json(&json)?;
            if t.args.nfft != config.nfft || t.args.nb_channels != config.nb_channels {
                bail!(
                    "{}: nfft {} / nb_channels {} differ from {}'s {} / {}",
                    json.display(),
                    t.args.nfft,
                    t.args.nb_channels,
                    SEPARATOR_JSON,
                    config.nfft,
                    config.nb_channels
                );
            }
            let pth = weights_file(dir, &name)?
                .with_context(|| format!("{}: no weights file {name}*.pth", dir.display()))?;
            let model = OpenUnmix::load(
                &pth,
                config.nfft / 2 + 1,
                config.nb_channels,
                t.args.hidden_size,
            )?;
            loaded.push((name, model));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            targets: loaded,
        })
    }
}

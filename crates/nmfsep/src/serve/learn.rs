//! Learning a dictionary from an uploaded clip: an `nmfsep learn` process of this same
//! executable (so the `.npz` is the command line's), at most as many at a time as there are
//! workers.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result};

use super::jobs::cli_error;

/// Settings of a learn request, as given (checked by the command line's parser).
#[derive(Debug, Default, Clone)]
pub struct LearnRequest {
    pub components: Option<String>,
    pub beta: Option<String>,
    pub n_fft: Option<String>,
}

/// How a learn run ended.
pub enum Learned {
    Ok,
    /// The command line refused the clip or a setting (its message).
    Refused(String),
}

/// Runs `exe learn clip -o dest --label label` with the settings of `req`.
///
/// # Errors
/// If the process cannot be started.
pub async fn learn(
    exe: &Path,
    clip: &Path,
    dest: &Path,
    label: &str,
    req: &LearnRequest,
) -> Result<Learned> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("learn")
        .arg(clip)
        .arg("--output")
        .arg(dest)
        .arg("--label")
        .arg(label);
    for (flag, v) in [
        ("--components", &req.components),
        ("--beta", &req.beta),
        ("--n-fft", &req.n_fft),
    ] {
        if let Some(v) = v {
            // `--flag=value`, so that a value is never read as another flag.
            cmd.arg(format!("{flag}={}", v.trim()));
        }
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot start {}", exe.display()))?;
    if out.status.success() && dest.is_file() {
        Ok(Learned::Ok)
    } else {
        Ok(Learned::Refused(cli_error(
            &String::from_utf8_lossy(&out.stderr),
            out.status,
        )))
    }
}

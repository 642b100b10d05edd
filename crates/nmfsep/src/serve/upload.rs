//! Multipart uploads: text fields and audio files received into `tmp/` under server-made
//! names, checked (the audio must decode; names must be plain), then moved into place or
//! removed. Bad input leaves nothing behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt;

use super::error::{ApiError, ApiResult};
use super::store::{upload_extension, Store};
use crate::audio::{read_audio_checked, AudioError};
use crate::cli::names::check_output_name;

/// Longest text field, bytes.
const MAX_TEXT: usize = 4096;
/// Longest name of a dictionary, a source or the rest, bytes.
pub const MAX_NAME: usize = 64;

/// A received file in `tmp/`, removed when dropped unless moved into place.
#[derive(Debug)]
pub struct TempUpload {
    path: Option<PathBuf>,
    /// The client's file name (only its extension is used, from a fixed list).
    pub file_name: Option<String>,
    pub bytes: usize,
}

impl TempUpload {
    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("not yet moved")
    }

    /// Renames the file to `dest` (same file system).
    ///
    /// # Errors
    /// If the rename fails (the file is then removed on drop).
    pub fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        let src = self.path.take().expect("not yet moved");
        match std::fs::rename(&src, dest) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.path = Some(src);
                Err(e)
            }
        }
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A parsed multipart form.
#[derive(Debug, Default)]
pub struct Form {
    /// Text fields by name, in the order received (repeatable fields keep every value).
    pub text: HashMap<String, Vec<String>>,
    /// File fields by name.
    pub files: HashMap<String, TempUpload>,
}

impl Form {
    /// The single value of text field `name`, if given.
    ///
    /// # Errors
    /// 400 if it was given more than once.
    pub fn one(&self, name: &str) -> ApiResult<Option<&str>> {
        match self.text.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v.as_str())),
            Some(_) => Err(ApiError::bad_request(format!(
                "field {name:?} is given more than once"
            ))),
        }
    }

    /// Every value of text field `name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.text.get(name).map_or(&[], Vec::as_slice)
    }
}

fn multipart_error(e: &MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "the upload is larger than the server's limit (--max-upload-mb)",
        )
    } else {
        ApiError::new(status, format!("bad multipart form: {}", e.body_text()))
    }
}

/// Reads a whole multipart form: fields named in `file_fields` are files written to `tmp/`,
/// the others text (at most [`MAX_TEXT`] bytes each).
///
/// # Errors
/// 413 past the body limit, 400 for a malformed form, a file in a text field or a field
/// given twice as a file.
pub async fn read_form(store: &Store, mut mp: Multipart, file_fields: &[&str]) -> ApiResult<Form> {
    let mut form = Form::default();
    while let Some(mut field) = mp.next_field().await.map_err(|e| multipart_error(&e))? {
        let name = field.name().unwrap_or("").to_string();
        if file_fields.contains(&name.as_str()) {
            if form.files.contains_key(&name) {
                return Err(ApiError::bad_request(format!(
                    "file {name:?} is given twice"
                )));
            }
            let file_name = field.file_name().map(str::to_string);
            let path = store.tmp_file(upload_extension(file_name.as_deref()));
            let mut upload = TempUpload {
                path: Some(path.clone()),
                file_name,
                bytes: 0,
            };
            let mut out = tokio::fs::File::create(&path)
                .await
                .map_err(|e| ApiError::from(anyhow::anyhow!("cannot write an upload: {e}")))?;
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                upload.bytes += chunk.len();
                out.write_all(&chunk)
                    .await
                    .map_err(|e| ApiError::from(anyhow::anyhow!("cannot write an upload: {e}")))?;
            }
            out.sync_all()
                .await
                .map_err(|e| ApiError::from(anyhow::anyhow!("cannot write an upload: {e}")))?;
            form.files.insert(name, upload);
        } else {
            if field.file_name().is_some() {
                return Err(ApiError::bad_request(format!(
                    "field {name:?} takes text, not a file"
                )));
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_TEXT {
                    return Err(ApiError::bad_request(format!(
                        "field {name:?} is longer than {MAX_TEXT} bytes"
                    )));
                }
            }
            let value = String::from_utf8(value)
                .map_err(|_| ApiError::bad_request(format!("field {name:?} is not UTF-8 text")))?;
            form.text.entry(name).or_default().push(value);
        }
    }
    Ok(form)
}

/// What a decoded upload holds.
#[derive(Clone, Copy, Debug)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: usize,
    pub seconds: f64,
}

/// Decodes the upload (on the blocking pool) to check that it is usable audio.
///
/// # Errors
/// 415 if it is not audio in a supported format or holds no samples, 400 if it is silent.
pub async fn check_audio(upload: &TempUpload, what: &str) -> ApiResult<AudioInfo> {
    let path = upload.path().to_path_buf();
    let what = what.to_string();
    tokio::task::spawn_blocking(move || match read_audio_checked(&path) {
        Ok((audio, _)) => {
            if audio.peak() == 0.0 {
                return Err(ApiError::bad_request(format!(
                    "the {what} is silent (all samples are zero)"
                )));
            }
            Ok(AudioInfo {
                sample_rate: audio.sample_rate,
                channels: audio.n_channels(),
                seconds: audio.duration_s(),
            })
        }
        Err(e @ AudioError::Io { .. }) => Err(ApiError::from(anyhow::anyhow!("{e}"))),
        // Any other reading error is about the content: not audio, empty, undecodable.
        Err(_) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the {what} is not a supported audio file (WAV, FLAC, MP3, Ogg Vorbis)"),
        )),
    })
    .await
    .map_err(|e| ApiError::from(anyhow::anyhow!("the audio check stopped: {e}")))?
}

/// Checks a user-given name (of a dictionary, a source or the rest): the rule of output file
/// names of the command line, no path separator, at most [`MAX_NAME`] bytes.
///
/// # Errors
/// 400 saying why.
pub fn check_name(name: &str, what: &str) -> ApiResult<()> {
    if name.len() > MAX_NAME {
        return Err(ApiError::bad_request(format!(
            "the {what} name is longer than {MAX_NAME} bytes"
        )));
    }
    if name.trim() != name {
        return Err(ApiError::bad_request(format!(
            "the {what} name {name:?} starts or ends with a space"
        )));
    }
    check_output_name(name, what).map_err(|e| ApiError::bad_request(format!("{e}")))?;
    if name.starts_with('.') {
        return Err(ApiError::bad_request(format!(
            "the {what} name {name:?} starts with a dot"
        )));
    }
    Ok(())
}

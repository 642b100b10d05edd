//! Reading audio files of any common format (symphonia) and writing float WAV files (hound).
//!
//! Audio is held as `channels[channel][sample]`: one `Vec<f32>` per channel, all of the same
//! length, samples in [-1, 1] full scale.

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Errors of reading and writing audio files. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file cannot be opened, read or written.
    #[error("cannot {action} {path}: {message}")]
    Io {
        action: &'static str,
        path: String,
        message: String,
    },
    /// The file is not audio in a supported format (WAV, FLAC, MP3, Ogg Vorbis).
    #[error("{path} is not a supported audio file: {message}")]
    Format { path: String, message: String },
    /// The file decodes to no samples.
    #[error("{path} contains no audio samples")]
    Empty { path: String },
    /// The file is empty (0 bytes).
    #[error("{path} is an empty file")]
    EmptyFile { path: String },
    /// The file's content is not a format this tool reads.
    #[error("{path} is not an audio file this tool reads (WAV, FLAC, MP3, Ogg Vorbis)")]
    NotAudio { path: String },
}

/// A sign of damage in a file that still decoded: the audio is used as far as it decodes,
/// and the caller shows the warning (the CLI prints it on stderr).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AudioWarning {
    /// Fewer samples than the header announces (a file cut short, e.g. an interrupted copy
    /// or recording). Only reported when more than 1 % of the announced length is missing,
    /// since compressed formats may announce an estimate.
    #[error("{path}: read {read_s:.1} s of the {announced_s:.1} s the header announces (the file is cut short); going on with what was read")]
    Truncated {
        path: String,
        /// Duration decoded, seconds.
        read_s: f64,
        /// Duration the header announces, seconds.
        announced_s: f64,
    },
    /// Packets that failed to decode were skipped, as players do.
    #[error(
        "{path}: skipped {count} damaged packet(s) that did not decode; going on without them"
    )]
    SkippedPackets { path: String, count: usize },
}

/// Decoded multichannel audio.
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// `channels[channel][sample]`, equal lengths, full scale +-1.
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    /// Number of channels.
    pub fn n_channels(&self) -> usize {
        self.channels.len()
    }

    /// Length in samples (per channel).
    pub fn len(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Duration, seconds.
    pub fn duration_s(&self) -> f64 {
        self.len() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// The mean of the channels (mono downmix), `len()` samples.
    pub fn mono(&self) -> Vec<f32> {
        let n = self.n_channels().max(1) as f32;
        (0..self.len())
            .map(|i| self.channels.iter().map(|c| c[i]).sum::<f32>() / n)
            .collect()
    }

    /// Largest absolute sample over all channels.
    pub fn peak(&self) -> f32 {
        self.channels
            .iter()
            .flat_map(|c| c.iter())
            .fold(0.0f32, |m, x| m.max(x.abs()))
    }
}

/// Decodes the first audio track of the file at `path` (format found from the content, the
/// extension only as a hint). Integer formats are scaled to +-1 full scale. Signs of damage
/// are dropped: use [`read_audio_checked`] to see them.
///
/// # Errors
/// As [`read_audio_checked`].
pub fn read_audio(path: &Path) -> Result<Audio, AudioError> {
    read_audio_checked(path).map(|(a, _)| a)
}

/// [`read_audio`], with the signs of damage found on the way. Damaged files are treated
/// alike: what decodes is used, and each kind of damage is one [`AudioWarning`] (a file cut
/// short, packets that did not decode). A file with nothing usable is an error.
///
/// # Errors
/// [`AudioError::Io`] if the file cannot be opened or read, [`AudioError::Format`] if it is
/// not audio in a supported format (or has no sample rate), [`AudioError::Empty`] if it
/// decodes to zero samples.
pub fn read_audio_checked(path: &Path) -> Result<(Audio, Vec<AudioWarning>), AudioError> {
    let p = path.display().to_string();
    let file = File::open(path).map_err(|e| AudioError::Io {
        action: "open",
        path: p.clone(),
        message: e.to_string(),
    })?;
    let format_err = |m: &dyn std::fmt::Display| AudioError::Format {
        path: p.clone(),
        message: m.to_string(),
    };
    if file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
        return Err(AudioError::EmptyFile { path: p });
    }
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|_| AudioError::NotAudio { path: p.clone() })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| format_err(&"no audio track"))?;
    let track_id = track.id;
    let mut sample_rate = track.codec_params.sample_rate;
    let mut n_channels = track.codec_params.channels.map(|c| c.count());
    let announced_frames = track.codec_params.n_frames;
    let mut skipped = 0usize;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| format_err(&e))?;

    let mut interleaved: Vec<f32> = Vec::new();
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(format_err(&e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(decoded) => {
                let spec = *decoded.spec();
                sample_rate.get_or_insert(spec.rate);
                n_channels.get_or_insert(spec.channels.count());
                let needed = decoded.capacity() as u64;
                if buf.as_ref().is_none_or(|b| b.capacity() < needed as usize) {
                    buf = Some(SampleBuffer::new(needed, spec));
                }
                let b = buf.as_mut().expect("just set");
                b.copy_interleaved_ref(decoded);
                interleaved.extend_from_slice(b.samples());
            }
            // A corrupt packet is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) => {
                skipped += 1;
                continue;
            }
            Err(e) => return Err(format_err(&e)),
        }
    }
    let sample_rate = sample_rate
        .filter(|&r| r > 0)
        .ok_or_else(|| format_err(&"unknown sample rate"))?;
    let n_channels = n_channels.unwrap_or(1).max(1);
    let len = interleaved.len() / n_channels;
    if len == 0 {
        return Err(AudioError::Empty { path: p });
    }
    let channels = (0..n_channels)
        .map(|c| (0..len).map(|i| interleaved[i * n_channels + c]).collect())
        .collect();
    let mut warnings = Vec::new();
    if let Some(announced) = announced_frames {
        // More than 1 % missing: compressed formats may announce an estimate.
        if (len as u64).saturating_mul(100) < announced.saturating_mul(99) {
            let rate = f64::from(sample_rate);
            warnings.push(AudioWarning::Truncated {
                path: p.clone(),
                read_s: len as f64 / rate,
                announced_s: announced as f64 / rate,
            });
        }
    }
    if skipped > 0 {
        warnings.push(AudioWarning::SkippedPackets {
            path: p.clone(),
            count: skipped,
        });
    }
    Ok((
        Audio {
            sample_rate,
            channels,
        },
        warnings,
    ))
}

/// Writes `channels[channel][sample]` (equal lengths) as a 32-bit float WAV file at
/// `sample_rate` Hz. Float keeps the samples exact, so separated sources still add up to the
/// input, and values beyond +-1 are not clipped.
///
/// # Errors
/// [`AudioError::Io`] if the file cannot be created or written.
///
/// # Panics
/// If the channels differ in length or there are none or more than 65535.
pub fn write_wav_f32(
    path: &Path,
    sample_rate: u32,
    channels: &[Vec<f32>],
) -> Result<(), AudioError> {
    assert!(!channels.is_empty() && channels.len() <= usize::from(u16::MAX));
    let len = channels[0].len();
    assert!(
        channels.iter().all(|c| c.len() == len),
        "channel lengths differ"
    );
    let io = |e: hound::Error| AudioError::Io {
        action: "write",
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(io)?;
    for i in 0..len {
        for c in channels {
            w.write_sample(c[i]).map_err(io)?;
        }
    }
    w.finalize().map_err(io)
}

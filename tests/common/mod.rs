//! Helpers shared by the host tests: example audio, SI-SDR, dictionaries learned with the
//! library as `nmfsep learn` does.
#![allow(dead_code)]

pub mod clap;
pub mod plugin;
pub mod vst3;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nmf_separator::dsp::{spectrogram, Stft};
use nmf_separator::nmf::{fit, Dictionary, FitOptions, Init, SpectrogramKind};

pub const SR: u32 = 44_100;
/// The example's stems, in the order of the sources they are learned into (piano -> Source 1,
/// bass -> Source 2).
pub const STEMS: [&str; 2] = ["piano", "bass"];

/// `$CARGO_TARGET_DIR` (absolute), or the crate's `target/`.
pub fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"));
    if target.is_absolute() {
        target
    } else {
        manifest_dir().join(target)
    }
}

/// nice-plug's state JSON with the persisted `dictionary` and `assignment` fields.
pub fn state_json(dict: &Dictionary, assignment: &[usize]) -> serde_json::Value {
    serde_json::json!({
        "params": {},
        "fields": {
            "dictionary": serde_json::to_string(dict).unwrap(),
            "assignment": serde_json::to_string(assignment).unwrap(),
        }
    })
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn case_dir() -> PathBuf {
    let local = manifest_dir().join("examples").join("piano_bass");
    if local.join("mix.wav").exists() {
        return local;
    }
    let shared = manifest_dir().join("../shared/bench/cases/A_piano_bass");
    assert!(
        shared.join("mix.wav").exists(),
        "no example audio: neither {} nor {}",
        local.display(),
        shared.display()
    );
    shared
}

/// The ground-truth stems of the case in `dir` (`stems/<name>.wav`), in the order of [`STEMS`].
pub fn read_stems(dir: &Path) -> Vec<Vec<f32>> {
    STEMS
        .iter()
        .map(|s| read_wav(&dir.join("stems").join(format!("{s}.wav"))))
        .collect()
}

/// A mono wav file as f32.
pub fn read_wav(path: &Path) -> Vec<f32> {
    let mut channels = read_channels(path);
    assert_eq!(channels.len(), 1, "{}", path.display());
    channels.pop().unwrap()
}

/// Every channel of a wav file at [`SR`] as f32, `[channel][sample]`.
pub fn read_channels(path: &Path) -> Vec<Vec<f32>> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(spec.sample_rate, SR, "{}", path.display());
    let n = spec.channels as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.unwrap() as f32 * scale)
                .collect()
        }
    };
    (0..n)
        .map(|c| samples.iter().skip(c).step_by(n).copied().collect())
        .collect()
}

/// Scale-invariant SDR of `est` against `reference`, dB (the library's helper).
pub fn si_sdr(est: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(est.len(), reference.len());
    nmf_separator::metrics::si_sdr(reference, est)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn peak(a: &[f32]) -> f32 {
    a.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

/// K templates per training clip (STFT magnitude, hop n_fft/4, floor 1e-6 x max, beta 1,
/// NNDSVDa, 200 iterations), labelled "Source N"; the assignment maps them to source N-1.
pub fn learn(n_fft: usize) -> (Dictionary, Vec<usize>) {
    let hop = n_fft / 4;
    let stft = Stft::new(n_fft, hop).unwrap();
    let mut parts = Vec::new();
    for (s, name) in STEMS.iter().enumerate() {
        let clip = read_wav(&case_dir().join("train").join(format!("{name}.wav")));
        let mut v = spectrogram(&stft.forward(&clip), 1.0);
        let floor = 1e-6 * v.iter().copied().fold(0.0f32, f32::max);
        v.mapv_inplace(|x| x + floor);
        let opts = FitOptions {
            n_components: 16,
            beta: 1.0,
            max_iter: 200,
            init: Init::Nndsvda,
            ..FitOptions::default()
        };
        let f = fit(
            v.view(),
            &opts,
            &mut |_| std::ops::ControlFlow::Continue(()),
        )
        .unwrap();
        parts.push(Dictionary {
            w: f.w,
            sample_rate: SR,
            n_fft,
            hop,
            beta: 1.0,
            spectrogram: SpectrogramKind::Magnitude,
            labels: vec![format!("Source {}", s + 1); 16],
        });
    }
    let dict = Dictionary::concat(&parts).unwrap();
    let assignment = (0..STEMS.len()).flat_map(|s| [s; 16]).collect();
    (dict, assignment)
}

pub fn learned(n_fft: usize) -> &'static (Dictionary, Vec<usize>) {
    static D2048: OnceLock<(Dictionary, Vec<usize>)> = OnceLock::new();
    static D1024: OnceLock<(Dictionary, Vec<usize>)> = OnceLock::new();
    match n_fft {
        2048 => D2048.get_or_init(|| learn(2048)),
        1024 => D1024.get_or_init(|| learn(1024)),
        _ => unreachable!(),
    }
}

/// `x` at `from` Hz resampled to `to` Hz with rubato's synchronous FFT resampler (delay
/// trimmed, so the output lines up with the input).
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
    use rubato::{Fft, FixedSync, Resampler};
    let mut r = Fft::<f64>::new(from as usize, to as usize, 1024, 1, FixedSync::Both).unwrap();
    let input = vec![x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>()];
    let adapter = SequentialSliceOfVecs::new(&input, 1, x.len()).unwrap();
    let len = r.process_all_needed_output_len(x.len());
    let mut out = vec![vec![0.0f64; len]; 1];
    let mut out_adapter = SequentialSliceOfVecs::new_mut(&mut out, 1, len).unwrap();
    let (_, n) = r
        .process_all_into_buffer(&adapter, &mut out_adapter, x.len(), None)
        .unwrap();
    out[0][..n].iter().map(|&v| v as f32).collect()
}

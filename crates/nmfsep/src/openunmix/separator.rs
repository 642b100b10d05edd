//! The Open-Unmix separator (`openunmix.model.Separator`, 1.3.0): the mixture's STFT, each
//! target's magnitude estimate, the multichannel Wiener filter on blocks of
//! `wiener_win_len` frames, the inverse STFT to the input's length.
//!
//! Memory: the spectrogram is never held whole. The encoder runs on blocks of
//! [`ENCODE_BLOCK`] frames and keeps `hidden` values per frame and target; the decoder, the
//! Wiener filter and the inverse STFT run together on each Wiener block, recomputing that
//! block's STFT, and add into the output signals. Beyond the input and output samples a
//! track needs about 2 * hidden floats per frame and target (for umxhq, 4 kB per 23 ms).

use ndarray::{s, Array2, Array3, Array4};
use realfft::num_complex::Complex32;

use super::folder::ModelFolder;
use super::stft::{OverlapAdd, UmxStft};
use super::wiener::{wiener, WienerOptions};

/// Frames per block of the encoder stage.
pub const ENCODE_BLOCK: usize = 256;

/// Settings of a separation (the `Separator`'s arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeparatorOptions {
    /// Wiener filter settings.
    pub wiener: WienerOptions,
    /// Frames per Wiener block (0 = the whole track at once); Python's default is 300.
    pub wiener_win_len: usize,
}

impl Default for SeparatorOptions {
    fn default() -> Self {
        Self {
            wiener: WienerOptions {
                iterations: 1,
                softmask: false,
                residual: false,
            },
            wiener_win_len: 300,
        }
    }
}

/// Where a separation is: `stage` ("encoding", "recurrent layers", "filtering") and the
/// units done out of `total`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Stage name.
    pub stage: &'static str,
    /// Units done.
    pub done: usize,
    /// Units in the stage.
    pub total: usize,
}

/// One separated source: its name and `channels[channel][sample]`.
pub type Source = (String, Vec<Vec<f32>>);

/// Separates `channels` (`channels[c][sample]`, as many channels as the models take, at
/// their sample rate) into the folder's targets (plus `residual` if asked), each as long as
/// the input.
///
/// # Panics
/// If the channel count differs from the models' or the channels differ in length.
pub fn separate(
    models: &ModelFolder,
    channels: &[Vec<f32>],
    opts: &SeparatorOptions,
    progress: &mut dyn FnMut(Progress),
) -> Vec<Source> {
    let n_c = models.config.nb_channels;
    assert_eq!(channels.len(), n_c, "channel count");
    let len = channels[0].len();
    assert!(channels.iter().all(|c| c.len() == len), "channel lengths");
    let stft = UmxStft::new(models.config.nfft, models.config.nhop);
    // Reflect padding needs more than n_fft / 2 samples: shorter inputs get trailing zeros,
    // cut again from the outputs.
    let padded: Vec<Vec<f32>>;
    let input: &[Vec<f32>] = if len < stft.min_len() {
        padded = channels
            .iter()
            .map(|c| {
                let mut v = c.clone();
                v.resize(stft.min_len(), 0.0);
                v
            })
            .collect();
        &padded
    } else {
        channels
    };
    let n = input[0].len();
    let n_t = stft.n_frames(n);
    let n_f = stft.n_bins();
    let n_targets = models.targets.len();

    // Stage 1: encoder on blocks of frames.
    let mut encoded: Vec<Array2<f32>> = models
        .targets
        .iter()
        .map(|(_, m)| Array2::zeros((n_t, m.shape.hidden)))
        .collect();
    let mut spec = Array2::<Complex32>::zeros((ENCODE_BLOCK, n_f));
    let mut t0 = 0;
    while t0 < n_t {
        let b = ENCODE_BLOCK.min(n_t - t0);
        let mut mag = Array3::<f32>::zeros((b, n_c, n_f));
        for (c, signal) in input.iter().enumerate() {
            stft.frames(signal, t0, spec.slice_mut(s![..b, ..]));
            mag.slice_mut(s![.., c, ..])
                .assign(&spec.slice(s![..b, ..]).mapv(|z| z.norm()));
        }
        for ((_, model), enc) in models.targets.iter().zip(encoded.iter_mut()) {
            let mb = model.shape.max_bin;
            let cut = mag
                .slice(s![.., .., ..mb])
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((b, n_c * mb))
                .expect("contiguous");
            enc.slice_mut(s![t0..t0 + b, ..])
                .assign(&model.encode(cut.view()));
        }
        t0 += b;
        progress(Progress {
            stage: "encoding",
            done: t0,
            total: n_t,
        });
    }

    // Stage 2: the recurrent layers over the whole sequence, target by target.
    let mut middle = Vec::with_capacity(n_targets);
    for (k, ((_, model), enc)) in models.targets.iter().zip(encoded).enumerate() {
        middle.push(model.middle(enc.view()));
        progress(Progress {
            stage: "recurrent layers",
            done: k + 1,
            total: n_targets,
        });
    }

    // Stage 3: decoder, Wiener filter and inverse STFT on each Wiener block.
    let n_out = n_targets + usize::from(opts.wiener.residual);
    let mut outputs: Vec<Vec<OverlapAdd>> = (0..n_out)
        .map(|_| (0..n_c).map(|_| OverlapAdd::new(&stft, n)).collect())
        .collect();
    let win = if opts.wiener_win_len == 0 {
        n_t
    } else {
        opts.wiener_win_len
    };
    let mut t0 = 0;
    while t0 < n_t {
        let b = win.min(n_t - t0);
        let mut mix = Array3::<Complex32>::zeros((b, n_f, n_c));
        let mut frames = Array2::<Complex32>::zeros((b, n_f));
        for (c, signal) in input.iter().enumerate() {
            stft.frames(signal, t0, frames.view_mut());
            mix.slice_mut(s![.., .., c]).assign(&frames);
        }
        let mut mags = Array4::<f32>::zeros((n_targets, b, n_f, n_c));
        for (j, ((_, model), mid)) in models.targets.iter().zip(&middle).enumerate() {
            let out = model.decode(mid.slice(s![t0..t0 + b, ..]));
            for t in 0..b {
                for c in 0..n_c {
                    for f in 0..n_f {
                        mags[[j, t, f, c]] = out[[t, c * n_f + f]] * mix[[t, f, c]].norm();
                    }
                }
            }
        }
        let y = wiener(mags.view(), mix.view(), &opts.wiener);
        for (j, outs) in outputs.iter_mut().enumerate() {
            for (c, ola) in outs.iter_mut().enumerate() {
                for t in 0..b {
                    ola.add(&stft, t0 + t, y.slice(s![j, t, .., c]).iter().copied());
                }
            }
        }
        t0 += b;
        progress(Progress {
            stage: "filtering",
            done: t0,
            total: n_t,
        });
    }
    let mut names: Vec<String> = models.targets.iter().map(|(n, _)| n.clone()).collect();
    if opts.wiener.residual {
        names.push("residual".into());
    }
    names
        .into_iter()
        .zip(outputs)
        .map(|(name, outs)| {
            let chans = outs
                .into_iter()
                .map(|o| {
                    let mut v = o.finish(&stft);
                    v.truncate(len);
                    v
                })
                .collect();
            (name, chans)
        })
        .collect()
}

//! One Open-Unmix target model in inference (Stöter, Uhlich, Liutkus, Mitsufuji 2019, "Open-
//! Unmix - A Reference Implementation for Music Source Separation", JOSS; the `OpenUnmix`
//! module of open-unmix-pytorch 1.3.0): input mean and scale, fc1 + batch norm + tanh, a
//! 3-layer bidirectional LSTM, the skip concatenation, fc2 + batch norm + ReLU, fc3 + batch
//! norm, output scale and mean, ReLU, times the mixture magnitude.
//!
//! The network runs in three stages so a long track never holds its whole spectrogram:
//! [`OpenUnmix::encode`] on blocks of frames, [`OpenUnmix::middle`] on the whole (small,
//! `hidden`-wide) sequence, [`OpenUnmix::decode`] on blocks again.

use std::path::Path;

use ndarray::{s, Array1, Array2, ArrayView2, Zip};

use super::lstm::Lstm;
use super::pth::{Checkpoint, PthError};

/// PyTorch's `BatchNorm1d` epsilon (its default, which Open-Unmix keeps).
const BATCH_NORM_EPS: f32 = 1e-5;

/// A batch norm in evaluation mode as the affine map `x * scale + shift`.
#[derive(Debug, Clone)]
struct BatchNorm {
    scale: Array1<f32>,
    shift: Array1<f32>,
}

impl BatchNorm {
    fn load(ck: &Checkpoint, prefix: &str, n: usize) -> Result<Self, PthError> {
        let w = ck.vector(&format!("{prefix}.weight"), n)?;
        let b = ck.vector(&format!("{prefix}.bias"), n)?;
        let mean = ck.vector(&format!("{prefix}.running_mean"), n)?;
        let var = ck.vector(&format!("{prefix}.running_var"), n)?;
        let scale = &w / &var.mapv(|v| (v + BATCH_NORM_EPS).sqrt());
        let shift = &b - &(&mean * &scale);
        Ok(Self { scale, shift })
    }

    /// Applies the map to every row of `x` (n x features).
    fn apply(&self, x: &mut Array2<f32>) {
        for mut row in x.rows_mut() {
            Zip::from(&mut row)
                .and(&self.scale)
                .and(&self.shift)
                .for_each(|v, &a, &b| *v = *v * a + b);
        }
    }
}

/// The sizes of one target model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    /// Output frequency bins, n_fft / 2 + 1.
    pub nb_bins: usize,
    /// Input bins the network sees (the length of `input_mean`; bins above are cut).
    pub max_bin: usize,
    /// Audio channels (2 for the published models).
    pub nb_channels: usize,
    /// Width of fc1/fc2 and of the LSTM output (each LSTM direction has half).
    pub hidden: usize,
    /// LSTM layers.
    pub nb_layers: usize,
}

/// The weights of one target model.
#[derive(Debug, Clone)]
pub struct OpenUnmix {
    /// Sizes.
    pub shape: ModelShape,
    input_mean: Array1<f32>,
    input_scale: Array1<f32>,
    fc1: Array2<f32>,
    bn1: BatchNorm,
    lstm: Lstm,
    fc2: Array2<f32>,
    bn2: BatchNorm,
    fc3: Array2<f32>,
    bn3: BatchNorm,
    output_scale: Array1<f32>,
    output_mean: Array1<f32>,
}

impl OpenUnmix {
    /// Loads the state dict at `path` for a model with `nb_bins` output bins, `nb_channels`
    /// channels and width `hidden` (as `TARGET.json` gives them); `max_bin` is read from the
    /// length of `input_mean` and the LSTM depth from the tensors present.
    ///
    /// # Errors
    /// A damaged file, a missing tensor or one whose shape does not match ([`PthError`]).
    pub fn load(
        path: &Path,
        nb_bins: usize,
        nb_channels: usize,
        hidden: usize,
    ) -> Result<Self, PthError> {
        let ck = Checkpoint::open(path)?;
        let mean_shape = ck.shape("input_mean")?;
        let max_bin = match mean_shape.as_slice() {
            [m] if *m >= 1 && *m <= nb_bins => *m,
            _ => {
                return Err(PthError::Shape {
                    path: path.display().to_string(),
                    name: "input_mean".into(),
                    found: mean_shape,
                    expected: vec![nb_bins],
                })
            }
        };
        if !hidden.is_multiple_of(2) || hidden == 0 {
            return Err(PthError::Read {
                path: path.display().to_string(),
                name: "lstm".into(),
                message: format!("hidden size {hidden} is not a positive even number"),
            });
        }
        let nb_layers = (0..)
            .take_while(|k| ck.shape(&format!("lstm.weight_ih_l{k}")).is_ok())
            .count();
        if nb_layers == 0 {
            return Err(PthError::Missing {
                path: path.display().to_string(),
                name: "lstm.weight_ih_l0".into(),
            });
        }
        let shape = ModelShape {
            nb_bins,
            max_bin,
            nb_channels,
            hidden,
            nb_layers,
        };
        let out = nb_channels * nb_bins;
        Ok(Self {
            shape,
            input_mean: ck.vector("input_mean", max_bin)?,
            input_scale: ck.vector("input_scale", max_bin)?,
            fc1: ck.matrix("fc1.weight", hidden, nb_channels * max_bin)?,
            bn1: BatchNorm::load(&ck, "bn1", hidden)?,
            lstm: Lstm::load(&ck, "lstm", hidden, hidden / 2, nb_layers)?,
            fc2: ck.matrix("fc2.weight", hidden, 2 * hidden)?,
            bn2: BatchNorm::load(&ck, "bn2", hidden)?,
            fc3: ck.matrix("fc3.weight", out, hidden)?,
            bn3: BatchNorm::load(&ck, "bn3", out)?,
            output_scale: ck.vector("output_scale", nb_bins)?,
            output_mean: ck.vector("output_mean", nb_bins)?,
        })
    }

    /// First stage: `mag` (n_frames x nb_channels * max_bin, channel-major, the mixture
    /// magnitude cut to `max_bin`) to tanh(bn1(fc1((mag + input_mean) * input_scale))),
    /// n_frames x hidden.
    pub fn encode(&self, mag: ArrayView2<f32>) -> Array2<f32> {
        let mb = self.shape.max_bin;
        let mut x = mag.to_owned();
        for mut row in x.rows_mut() {
            for c in 0..self.shape.nb_channels {
                let mut part = row.slice_mut(s![c * mb..(c + 1) * mb]);
                Zip::from(&mut part)
                    .and(&self.input_mean)
                    .and(&self.input_scale)
                    .for_each(|v, &m, &sc| *v = (*v + m) * sc);
            }
        }
        let mut h = x.dot(&self.fc1.t());
        self.bn1.apply(&mut h);
        h.mapv_inplace(f32::tanh);
        h
    }

    /// Second stage over the whole sequence: the LSTM on the encoded frames, the skip
    /// concatenation [x, lstm(x)], then relu(bn2(fc2(.))); n_frames x hidden.
    pub fn middle(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let lstm_out = self.lstm.forward(x);
        // fc2 on [x, lstm(x)] as the sum of its two halves' products (no concatenated copy).
        let hidden = self.shape.hidden;
        let mut h = x.dot(&self.fc2.slice(s![.., ..hidden]).t());
        ndarray::linalg::general_mat_mul(
            1.0,
            &lstm_out,
            &self.fc2.slice(s![.., hidden..]).t(),
            1.0,
            &mut h,
        );
        self.bn2.apply(&mut h);
        h.mapv_inplace(|v| v.max(0.0));
        h
    }

    /// Last stage on a block of frames: relu((bn3(fc3(h)) * output_scale + output_mean)),
    /// n_frames x nb_channels * nb_bins (channel-major); the caller multiplies it by the
    /// mixture magnitude to get the target's magnitude estimate.
    pub fn decode(&self, h: ArrayView2<f32>) -> Array2<f32> {
        let nb = self.shape.nb_bins;
        let mut y = h.dot(&self.fc3.t());
        self.bn3.apply(&mut y);
        for mut row in y.rows_mut() {
            for c in 0..self.shape.nb_channels {
                let mut part = row.slice_mut(s![c * nb..(c + 1) * nb]);
                Zip::from(&mut part)
                    .and(&self.output_scale)
                    .and(&self.output_mean)
                    .for_each(|v, &sc, &m| *v = (*v * sc + m).max(0.0));
            }
        }
        y
    }
}

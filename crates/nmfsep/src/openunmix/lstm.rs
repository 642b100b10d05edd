//! The multi-layer bidirectional LSTM of Open-Unmix in inference (PyTorch's `nn.LSTM`, gate
//! order i, f, g, o; Hochreiter and Schmidhuber 1997, with the forget gate of Gers et al.
//! 2000). The input products of all frames are one matrix product per layer; only the
//! recurrent product runs frame by frame.

use ndarray::{s, Array1, Array2, ArrayView2, Axis};

use super::pth::{Checkpoint, PthError};

/// One direction of one layer: `w_ih` (4H x input), `w_hh` (4H x H), `bias` = b_ih + b_hh.
#[derive(Debug, Clone)]
struct Direction {
    w_hh: Array2<f32>,
}

/// One layer: both directions' input weights stacked (8H x input) so one product serves both.
#[derive(Debug, Clone)]
struct Layer {
    w_ih_t: Array2<f32>,
    bias: Array1<f32>,
    dirs: [Direction; 2],
}

/// A bidirectional LSTM with `n_layers` layers of hidden size `hidden` per direction; output
/// 2 * `hidden` per frame (forward then backward halves, as PyTorch concatenates them).
#[derive(Debug, Clone)]
pub struct Lstm {
    hidden: usize,
    layers: Vec<Layer>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Lstm {
    /// Reads `{prefix}.weight_ih_l{k}[_reverse]`, `weight_hh`, `bias_ih`, `bias_hh` for
    /// `n_layers` layers; layer 0 has `input` inputs, the others 2 * `hidden`.
    ///
    /// # Errors
    /// A missing tensor or one of another shape ([`PthError`]).
    pub fn load(
        ck: &Checkpoint,
        prefix: &str,
        input: usize,
        hidden: usize,
        n_layers: usize,
    ) -> Result<Self, PthError> {
        let mut layers = Vec::with_capacity(n_layers);
        for k in 0..n_layers {
            let n_in = if k == 0 { input } else { 2 * hidden };
            let mut w_ih = Array2::<f32>::zeros((8 * hidden, n_in));
            let mut bias = Array1::<f32>::zeros(8 * hidden);
            let mut dirs = Vec::with_capacity(2);
            for (d, suffix) in ["", "_reverse"].iter().enumerate() {
                let name = |w: &str| format!("{prefix}.{w}_l{k}{suffix}");
                let rows = s![d * 4 * hidden..(d + 1) * 4 * hidden];
                w_ih.slice_mut(s![d * 4 * hidden..(d + 1) * 4 * hidden, ..])
                    .assign(&ck.matrix(&name("weight_ih"), 4 * hidden, n_in)?);
                let b = ck.vector(&name("bias_ih"), 4 * hidden)?
                    + ck.vector(&name("bias_hh"), 4 * hidden)?;
                bias.slice_mut(rows).assign(&b);
                dirs.push(Direction {
                    w_hh: ck.matrix(&name("weight_hh"), 4 * hidden, hidden)?,
                });
            }
            let [fwd, bwd]: [Direction; 2] = dirs.try_into().expect("two directions");
            layers.push(Layer {
                w_ih_t: w_ih.reversed_axes().as_standard_layout().to_owned(),
                bias,
                dirs: [fwd, bwd],
            });
        }
        Ok(Self { hidden, layers })
    }

    /// Runs the LSTM over `x` (n_frames x input), zero initial states; returns n_frames x
    /// 2 * hidden.
    pub fn forward(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let h = self.hidden;
        let n = x.nrows();
        let mut input = x.to_owned();
        for layer in &self.layers {
            // Input products of every frame and both directions at once: n x 8H.
            let mut gates_in = input.dot(&layer.w_ih_t);
            gates_in += &layer.bias;
            let mut out = Array2::<f32>::zeros((n, 2 * h));
            for (d, dir) in layer.dirs.iter().enumerate() {
                let mut hs = vec![0.0f32; h];
                let mut cs = vec![0.0f32; h];
                let mut g = vec![0.0f32; 4 * h];
                for step in 0..n {
                    let t = if d == 0 { step } else { n - 1 - step };
                    let pre = gates_in.slice(s![t, d * 4 * h..(d + 1) * 4 * h]);
                    matvec_add(&dir.w_hh, &hs, pre.as_slice().expect("row"), &mut g);
                    let mut row = out.slice_mut(s![t, d * h..(d + 1) * h]);
                    for k in 0..h {
                        let i = sigmoid(g[k]);
                        let f = sigmoid(g[h + k]);
                        let c = g[2 * h + k].tanh();
                        let o = sigmoid(g[3 * h + k]);
                        cs[k] = f * cs[k] + i * c;
                        hs[k] = o * cs[k].tanh();
                        row[k] = hs[k];
                    }
                }
            }
            input = out;
        }
        debug_assert_eq!(input.len_of(Axis(1)), 2 * h);
        input
    }
}

/// `out = base + w . v` for a row-major `w` (rows x v.len()).
fn matvec_add(w: &Array2<f32>, v: &[f32], base: &[f32], out: &mut [f32]) {
    let cols = v.len();
    let data = w.as_slice().expect("standard layout");
    for ((o, b), row) in out.iter_mut().zip(base).zip(data.chunks_exact(cols)) {
        let mut acc = [0.0f32; 8];
        let mut rc = row.chunks_exact(8);
        let mut vc = v.chunks_exact(8);
        for (r8, v8) in (&mut rc).zip(&mut vc) {
            for l in 0..8 {
                acc[l] += r8[l] * v8[l];
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (r, x) in rc.remainder().iter().zip(vc.remainder()) {
            sum += r * x;
        }
        *o = b + sum;
    }
}

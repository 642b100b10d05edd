//! The multi-layer bidirectional LSTM of Open-Unmix in inference (PyTorch's `nn.LSTM`, gate
//! order i, f, g, o; Hochreiter and Schmidhuber 1997, with the forget gate of Gers et al.
//! 2000). The input products are matrix products over blocks of [`INPUT_BLOCK`] frames (one
//! product for a whole track up to that length, and no buffer of 4 x hidden values per
//! frame for long ones); only the recurrent product runs frame by frame.

use ndarray::{s, Array1, Array2, ArrayView2};

use super::pth::{Checkpoint, PthError};

/// Frames per input product.
pub const INPUT_BLOCK: usize = 1024;

/// One direction of one layer: input weights transposed (input x 4H), recurrent weights
/// (4H x H, row-major), bias = b_ih + b_hh.
#[derive(Debug, Clone)]
struct Direction {
    w_ih_t: Array2<f32>,
    w_hh: Array2<f32>,
    bias: Array1<f32>,
}

/// A bidirectional LSTM with `n_layers` layers of hidden size `hidden` per direction; output
/// 2 * `hidden` per frame (forward then backward halves, as PyTorch concatenates them).
#[derive(Debug, Clone)]
pub struct Lstm {
    hidden: usize,
    layers: Vec<[Direction; 2]>,
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
            let mut dirs = Vec::with_capacity(2);
            for suffix in ["", "_reverse"] {
                let name = |w: &str| format!("{prefix}.{w}_l{k}{suffix}");
                let w_ih = ck.matrix(&name("weight_ih"), 4 * hidden, n_in)?;
                dirs.push(Direction {
                    w_ih_t: w_ih.reversed_axes().as_standard_layout().to_owned(),
                    w_hh: ck.matrix(&name("weight_hh"), 4 * hidden, hidden)?,
                    bias: ck.vector(&name("bias_ih"), 4 * hidden)?
                        + ck.vector(&name("bias_hh"), 4 * hidden)?,
                });
            }
            let [fwd, bwd]: [Direction; 2] = dirs.try_into().expect("two directions");
            layers.push([fwd, bwd]);
        }
        Ok(Self { hidden, layers })
    }

    /// Runs the LSTM over `x` (n_frames x input), zero initial states; returns n_frames x
    /// 2 * hidden.
    pub fn forward(&self, x: ArrayView2<f32>) -> Array2<f32> {
        self.forward_in_blocks(x, INPUT_BLOCK)
    }

    /// [`Lstm::forward`] with input products over blocks of `block` frames.
    fn forward_in_blocks(&self, x: ArrayView2<f32>, block: usize) -> Array2<f32> {
        let h = self.hidden;
        let n = x.nrows();
        let mut input = x.to_owned();
        for layer in &self.layers {
            let mut out = Array2::<f32>::zeros((n, 2 * h));
            for (d, dir) in layer.iter().enumerate() {
                let mut hs = vec![0.0f32; h];
                let mut cs = vec![0.0f32; h];
                let mut g = vec![0.0f32; 4 * h];
                let n_blocks = n.div_ceil(block);
                for b in 0..n_blocks {
                    let b = if d == 0 { b } else { n_blocks - 1 - b };
                    let (t0, t1) = (b * block, ((b + 1) * block).min(n));
                    let mut gates_in = input.slice(s![t0..t1, ..]).dot(&dir.w_ih_t);
                    gates_in += &dir.bias;
                    for step in 0..t1 - t0 {
                        let k = if d == 0 { step } else { t1 - t0 - 1 - step };
                        let pre = gates_in.row(k);
                        matvec_add(&dir.w_hh, &hs, pre.as_slice().expect("row"), &mut g);
                        let mut row = out.slice_mut(s![t0 + k, d * h..(d + 1) * h]);
                        for j in 0..h {
                            let i = sigmoid(g[j]);
                            let f = sigmoid(g[h + j]);
                            let c = g[2 * h + j].tanh();
                            let o = sigmoid(g[3 * h + j]);
                            cs[j] = f * cs[j] + i * c;
                            hs[j] = o * cs[j].tanh();
                            row[j] = hs[j];
                        }
                    }
                }
            }
            input = out;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_input_products_change_nothing() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/openunmix/model/vocals-1a2b3c4d.pth");
        let ck = Checkpoint::open(&path).unwrap();
        let lstm = Lstm::load(&ck, "lstm", 16, 8, 3).unwrap();
        let x = Array2::from_shape_fn((50, 16), |(t, k)| ((t * 7 + k * 3) % 11) as f32 / 5.0 - 1.0);
        let whole = lstm.forward_in_blocks(x.view(), 1024);
        for block in [1, 7, 49] {
            assert_eq!(
                lstm.forward_in_blocks(x.view(), block),
                whole,
                "block {block}"
            );
        }
        assert!(whole.iter().all(|v| v.abs() < 1.0) && whole.iter().any(|v| *v != 0.0));
    }
}

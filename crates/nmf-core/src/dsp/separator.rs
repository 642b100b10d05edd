//! The one seam between a separator and what follows it. A separator turns the spectrogram of
//! a mixture into one model spectrogram per source ([`Separator::source_models`]); the rest
//! is shared by every separator: Wiener masks from the models, applied to every channel's
//! STFT, and the inverse STFT ([`resynthesize`]). Supervised NMF ([`SupervisedNmf`]) is one
//! such separator; the semi-supervised fit and the unsupervised decomposition produce their
//! models with [`nmf_source_models`] and share [`resynthesize`] the same way.

use ndarray::{Array2, ArrayView2, Axis};
use realfft::num_complex::Complex32;

use super::mask::wiener_masks_in_place;
use super::separate::{groups_by_label, SeparateError};
use super::stft::Stft;
use crate::nmf::{fit_activations, ActivationOptions, CostPoint, Dictionary};

/// A separator: one model spectrogram per source from the spectrogram of a mixture.
pub trait Separator {
    /// The sources' names, in the order of [`Self::source_models`].
    fn source_names(&self) -> Vec<String>;

    /// The model spectrogram of every source (n_bins x n_frames each, of the same kind as
    /// `v`: magnitude or power) for the mixture spectrogram `v` (n_bins x n_frames).
    ///
    /// # Errors
    /// When `v` does not fit the separator or its fit fails.
    fn source_models(&mut self, v: ArrayView2<f32>) -> Result<Vec<Array2<f32>>, SeparateError>;
}

/// Supervised NMF: the dictionary's templates W (n_bins x K) held fixed, the activations H
/// fitted to the mixture with multiplicative updates ([`fit_activations`]; Févotte & Idier
/// 2011, eq. 4.1 with W fixed), the components grouped into sources by label
/// ([`groups_by_label`]) and each source modelled as `W_s H_s`.
pub struct SupervisedNmf<'a> {
    dict: &'a Dictionary,
    opts: ActivationOptions,
    names: Vec<String>,
    groups: Vec<Vec<usize>>,
    /// H (K x n_frames) and the cost history of the latest fit.
    last: Option<(Array2<f32>, Vec<CostPoint>)>,
}

impl<'a> SupervisedNmf<'a> {
    /// The separator of `dict` with the activation fit's settings `opts`.
    pub fn new(dict: &'a Dictionary, opts: ActivationOptions) -> Self {
        let (names, groups) = groups_by_label(dict);
        Self {
            dict,
            opts,
            names,
            groups,
            last: None,
        }
    }

    /// The activations H (K x n_frames) and cost history of the latest
    /// [`Self::source_models`] (empty before the first).
    pub fn take_activations(&mut self) -> (Array2<f32>, Vec<CostPoint>) {
        self.last
            .take()
            .unwrap_or_else(|| (Array2::zeros((self.dict.n_components(), 0)), Vec::new()))
    }
}

impl Separator for SupervisedNmf<'_> {
    fn source_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn source_models(&mut self, v: ArrayView2<f32>) -> Result<Vec<Array2<f32>>, SeparateError> {
        let (h, cost) = fit_activations(v, self.dict.w.view(), &self.opts)?;
        let models = nmf_source_models(self.dict.w.view(), h.view(), &self.groups);
        self.last = Some((h, cost));
        Ok(models)
    }
}

/// The model of every group of components, `sum over k in group of W[:, k] H[k, :]`
/// (n_bins x n_frames each), for `w` (n_bins x K) and `h` (K x n_frames).
pub fn nmf_source_models(
    w: ArrayView2<f32>,
    h: ArrayView2<f32>,
    groups: &[Vec<usize>],
) -> Vec<Array2<f32>> {
    let (n_bins, n_frames) = (w.nrows(), h.ncols());
    groups
        .iter()
        .map(|g| {
            let mut m = Array2::<f32>::zeros((n_bins, n_frames));
            for &k in g {
                let wk = w.column(k);
                let hk = h.row(k);
                ndarray::Zip::from(&mut m)
                    .and_broadcast(&wk.insert_axis(Axis(1)))
                    .and_broadcast(&hk.insert_axis(Axis(0)))
                    .for_each(|m, &a, &b| *m += a * b);
            }
            m
        })
        .collect()
}

/// The shared stage of every separator: Wiener masks `Y_s^p / sum_j Y_j^p` from the source
/// `models` (Y_s the magnitude model: a power model's exponent `exponent` = 2 is divided out
/// of `mask_power` p), which sum to one in every bin, applied to the STFT of every channel
/// (`specs`, n_bins x n_frames each) and inverted to `len` samples. Returns
/// `audio[source][channel]`, which adds up to the input channels (up to the STFT's rounding).
pub fn resynthesize(
    stft: &Stft,
    specs: &[&Array2<Complex32>],
    mut models: Vec<Array2<f32>>,
    exponent: f32,
    mask_power: f32,
    len: usize,
) -> Vec<Vec<Vec<f32>>> {
    let (n_bins, n_frames) = models.first().map_or((0, 0), |m| m.dim());
    let p = mask_power / exponent;
    let mut column: Vec<Vec<f32>> = vec![vec![0.0; n_bins]; models.len()];
    for t in 0..n_frames {
        for (c, m) in column.iter_mut().zip(&models) {
            c.iter_mut().zip(m.column(t)).for_each(|(d, s)| *d = *s);
        }
        let mut refs: Vec<&mut [f32]> = column.iter_mut().map(|c| c.as_mut_slice()).collect();
        wiener_masks_in_place(&mut refs, p);
        for (c, m) in column.iter().zip(models.iter_mut()) {
            m.column_mut(t).iter_mut().zip(c).for_each(|(d, s)| *d = *s);
        }
    }
    models
        .iter()
        .map(|mask| {
            specs
                .iter()
                .map(|x| stft.inverse(&(*x * &mask.mapv(|m| Complex32::new(m, 0.0))), len))
                .collect()
        })
        .collect()
}

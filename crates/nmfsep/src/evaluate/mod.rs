//! BSS Eval version 4 as museval 0.4.1 computes it for `evaluate(..., mode="v4")` (Vincent,
//! Gribonval, Févotte 2006, "Performance measurement in blind audio source separation",
//! IEEE TASLP 14(4); Stöter, Liutkus, Ito 2018, "The 2018 Signal Separation Evaluation
//! Campaign", LVA/ICA): distortion filters of 512 taps fitted once over the whole track
//! ([`filters`]), then SDR, ISR, SIR and SAR per window ([`window`]); a window where any
//! reference or any estimate is silent (all channel sums zero) is NaN for every source.

pub mod filters;
pub mod lu;
pub mod window;

use std::borrow::Cow;

use ndarray::{s, Array2};

use filters::{factor, gram, projection_filters, Correlator};
use window::{criteria, WindowProjector};

/// Taps of the distortion filters (museval's `filters_len`).
pub const FILTERS_LEN: usize = 512;

/// Why scores cannot be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvalError {
    /// Reference and estimate counts or channel counts differ, or there are none.
    #[error("{0}")]
    Shape(String),
    /// The references' delayed copies are linearly dependent (e.g. a silent channel in
    /// every sample), so the distortion filters are not defined.
    #[error("the references are linearly dependent (a silent or duplicated channel?); the distortion filters are not defined")]
    Singular,
}

/// Scores of one source, one value per window (NaN where skipped), dB.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceScores {
    /// Source to distortion ratio.
    pub sdr: Vec<f64>,
    /// Source image to spatial distortion ratio.
    pub isr: Vec<f64>,
    /// Source to interference ratio.
    pub sir: Vec<f64>,
    /// Sources to artifacts ratio.
    pub sar: Vec<f64>,
}

/// The windows museval's `Framing` makes: `(start, stop)` sample ranges.
pub fn windows(len: usize, window: usize, hop: usize) -> Vec<(usize, usize)> {
    let n = if window < len {
        (len - window + hop) / hop
    } else {
        1
    };
    (0..n)
        .map(|t| (t * hop, (t * hop + window).min(len)))
        .collect()
}

/// The median of the values that are not NaN (numpy's `nanmedian`); NaN if there are none.
pub fn nan_median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn silent<'a>(signals: impl IntoIterator<Item = &'a Array2<f64>>, a: usize, b: usize) -> bool {
    signals.into_iter().any(|x| {
        x.slice(s![a..b, ..])
            .rows()
            .into_iter()
            .all(|r| r.sum() == 0.0)
    })
}

/// BSS Eval v4 of `estimates` against `references` (each samples x channels, full scale
/// +-1; estimates are zero-padded or cut to the references' length as museval's
/// `pad_or_truncate`), windows of `window` samples every `hop` samples.
///
/// # Errors
/// [`EvalError::Shape`] for mismatched counts or channels, [`EvalError::Singular`] for
/// references whose filters are undefined.
pub fn bss_eval_v4(
    references: &[Array2<f64>],
    estimates: &[Array2<f64>],
    window: usize,
    hop: usize,
) -> Result<Vec<SourceScores>, EvalError> {
    let n_src = references.len();
    if n_src == 0 || estimates.len() != n_src {
        return Err(EvalError::Shape(format!(
            "{} references and {} estimates",
            n_src,
            estimates.len()
        )));
    }
    if window == 0 || hop == 0 {
        return Err(EvalError::Shape("window and hop must be positive".into()));
    }
    let (len, n_c) = references[0].dim();
    if references.iter().chain(estimates).any(|x| x.ncols() != n_c)
        || references.iter().any(|x| x.nrows() != len)
        || len == 0
    {
        return Err(EvalError::Shape(
            "references and estimates must have one length and one channel count".into(),
        ));
    }
    // Only estimates of another length are copied (padded or cut).
    let estimates: Vec<Cow<Array2<f64>>> = estimates
        .iter()
        .map(|e| {
            if e.nrows() == len {
                return Cow::Borrowed(e);
            }
            let mut out = Array2::<f64>::zeros((len, n_c));
            let k = e.nrows().min(len);
            out.slice_mut(s![..k, ..]).assign(&e.slice(s![..k, ..]));
            Cow::Owned(out)
        })
        .collect();
    let l = FILTERS_LEN;
    let corr = Correlator::new(len, l);
    let ref_spectra: Vec<Vec<_>> = references
        .iter()
        .flat_map(|x| {
            x.columns()
                .into_iter()
                .map(|c| corr.spectrum(c.iter().copied()))
                .collect::<Vec<_>>()
        })
        .collect();
    let all: Vec<&[_]> = ref_spectra.iter().map(Vec::as_slice).collect();
    let g_all = factor(gram(&corr, &all, l), all.len() * l).map_err(|_| EvalError::Singular)?;
    // Per source: the filters onto all references (C) and onto its own (Cj), per channel.
    let mut c_all = Vec::with_capacity(n_src);
    let mut c_own = Vec::with_capacity(n_src);
    for j in 0..n_src {
        let est: Vec<Vec<_>> = estimates[j]
            .columns()
            .into_iter()
            .map(|c| corr.spectrum(c.iter().copied()))
            .collect();
        c_all.push(projection_filters(&corr, &g_all, &all, &est, l));
        let own = &all[j * n_c..(j + 1) * n_c];
        let g_own = factor(gram(&corr, own, l), n_c * l).map_err(|_| EvalError::Singular)?;
        c_own.push(projection_filters(&corr, &g_own, own, &est, l));
    }
    drop(ref_spectra);

    let wins = windows(len, window, hop);
    let proj = WindowProjector::new(window.min(len), l);
    // Filter spectra: [source][out channel][reference channel p].
    let spec_of = |filters: &Vec<Vec<Vec<f64>>>| -> Vec<Vec<Vec<Vec<_>>>> {
        filters
            .iter()
            .map(|per_c| {
                per_c
                    .iter()
                    .map(|taps| taps.chunks(l).map(|f| proj.spectrum(f)).collect())
                    .collect()
            })
            .collect()
    };
    let f_all = spec_of(&c_all);
    let f_own = spec_of(&c_own);
    let mut scores: Vec<SourceScores> = (0..n_src)
        .map(|_| SourceScores {
            sdr: Vec::new(),
            isr: Vec::new(),
            sir: Vec::new(),
            sar: Vec::new(),
        })
        .collect();
    for &(a, b) in &wins {
        let skip = silent(references, a, b) || silent(estimates.iter().map(|e| &**e), a, b);
        let out_len = b - a + l - 1;
        let win_spec: Vec<Vec<_>> = if skip {
            Vec::new()
        } else {
            references
                .iter()
                .flat_map(|x| {
                    (0..n_c)
                        .map(|c| proj.spectrum(&x.slice(s![a..b, c]).to_vec()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        for j in 0..n_src {
            let v = if skip {
                [f64::NAN; 4]
            } else {
                let chan = |x: &Array2<f64>| -> Vec<Vec<f64>> {
                    (0..n_c).map(|c| x.slice(s![a..b, c]).to_vec()).collect()
                };
                let sigs: Vec<&[_]> = win_spec.iter().map(Vec::as_slice).collect();
                let own_sigs = &sigs[j * n_c..(j + 1) * n_c];
                let pa: Vec<Vec<f64>> = (0..n_c)
                    .map(|c| {
                        let f: Vec<&[_]> = f_all[j][c].iter().map(Vec::as_slice).collect();
                        proj.project(&f, &sigs, out_len)
                    })
                    .collect();
                let pj: Vec<Vec<f64>> = (0..n_c)
                    .map(|c| {
                        let f: Vec<&[_]> = f_own[j][c].iter().map(Vec::as_slice).collect();
                        proj.project(&f, own_sigs, out_len)
                    })
                    .collect();
                criteria(&chan(&references[j]), &chan(&estimates[j]), &pj, &pa)
            };
            scores[j].sdr.push(v[0]);
            scores[j].isr.push(v[1]);
            scores[j].sir.push(v[2]);
            scores[j].sar.push(v[3]);
        }
    }
    Ok(scores)
}

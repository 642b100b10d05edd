//! Per-window scores of BSS Eval v4 (museval 0.4.1 `_bss_decomp_mtifilt`, `_project` and
//! `_bss_crit` without the `bsseval_sources_version`; Vincent, Gribonval, Févotte 2006,
//! eqs. 12-15 and 19-22): the window's references are filtered by the whole-track filters
//! (zero-padded, so each projection is window + taps - 1 samples long) and the energy ratios
//! of the decomposition s_true + e_spat + e_interf + e_artif are taken in dB.

use std::sync::Arc;

use realfft::num_complex::Complex64;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// FFT convolution of a window's reference channels with fixed filters.
pub struct WindowProjector {
    n_fft: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
}

impl WindowProjector {
    /// For windows of at most `window` samples and filters of `filters_len` taps.
    pub fn new(window: usize, filters_len: usize) -> Self {
        let n_fft = (window + filters_len - 1).next_power_of_two();
        let mut planner = RealFftPlanner::<f64>::new();
        Self {
            n_fft,
            forward: planner.plan_fft_forward(n_fft),
            inverse: planner.plan_fft_inverse(n_fft),
        }
    }

    /// The spectrum of a signal (a filter or a window of a channel), zero-padded.
    pub fn spectrum(&self, x: &[f64]) -> Vec<Complex64> {
        let mut buf = self.forward.make_input_vec();
        buf[..x.len()].copy_from_slice(x);
        let mut out = self.forward.make_output_vec();
        self.forward
            .process(&mut buf, &mut out)
            .expect("plan sizes");
        out
    }

    /// sum_p filters[p] * x[p] (linear convolutions), its first `len` samples, from the
    /// spectra of the filters and of the signals.
    pub fn project(
        &self,
        filters: &[&[Complex64]],
        signals: &[&[Complex64]],
        len: usize,
    ) -> Vec<f64> {
        let mut acc = vec![Complex64::new(0.0, 0.0); self.n_fft / 2 + 1];
        for (f, x) in filters.iter().zip(signals) {
            for ((a, u), v) in acc.iter_mut().zip(*f).zip(*x) {
                *a += u * v;
            }
        }
        let last = acc.len() - 1;
        acc[0].im = 0.0;
        acc[last].im = 0.0;
        let mut time = self.inverse.make_output_vec();
        self.inverse
            .process(&mut acc, &mut time)
            .expect("plan sizes");
        let scale = 1.0 / self.n_fft as f64;
        time.truncate(len);
        time.iter_mut().for_each(|v| *v *= scale);
        time
    }
}

/// 10 log10(num / den), +inf when den is 0 (museval's `_safe_db`).
fn safe_db(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (num / den).log10()
    }
}

/// SDR, ISR, SIR, SAR (dB) of one window of one source from, per channel, the reference
/// window `s` (W samples), the estimate window `e` (W samples), its projection on the
/// source's own reference `pj` and on all references `pa` (W + taps - 1 samples each).
pub fn criteria(s: &[Vec<f64>], e: &[Vec<f64>], pj: &[Vec<f64>], pa: &[Vec<f64>]) -> [f64; 4] {
    let (mut e_true, mut e_dist, mut e_spat, mut e_img, mut e_interf, mut e_all, mut e_artif) =
        (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for c in 0..s.len() {
        for n in 0..pj[c].len() {
            let st = s[c].get(n).copied().unwrap_or(0.0);
            let est = e[c].get(n).copied().unwrap_or(0.0);
            // e_spat = pj - s_true; e_interf = pa - s_true - e_spat; e_artif = est - pa.
            let spat = pj[c][n] - st;
            let interf = pa[c][n] - st - spat;
            let artif = -st - spat - interf + est;
            e_true += st * st;
            let dist = spat + interf + artif;
            e_dist += dist * dist;
            e_spat += spat * spat;
            let img = st + spat;
            e_img += img * img;
            e_interf += interf * interf;
            let all = st + spat + interf;
            e_all += all * all;
            e_artif += artif * artif;
        }
    }
    [
        safe_db(e_true, e_dist),
        safe_db(e_true, e_spat),
        safe_db(e_img, e_interf),
        safe_db(e_all, e_artif),
    ]
}

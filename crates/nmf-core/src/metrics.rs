//! Separation quality measures used by the tests and benchmarks.

/// Scale-invariant signal-to-distortion ratio in dB of `estimate` against `reference`
/// (Le Roux, Wisdom, Erdogan & Hershey 2019, "SDR - half-baked or well done?", ICASSP,
/// eq. 4-5): the reference scaled by `<estimate, reference> / |reference|^2` is the target,
/// the rest is distortion. Multichannel signals are passed flattened. Only the common
/// length is compared. Computed in f64.
pub fn si_sdr(reference: &[f32], estimate: &[f32]) -> f64 {
    let n = reference.len().min(estimate.len());
    let (r, e) = (&reference[..n], &estimate[..n]);
    let dot: f64 = r
        .iter()
        .zip(e)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let rr: f64 = r.iter().map(|&a| f64::from(a) * f64::from(a)).sum();
    let alpha = dot / (rr + 1e-20);
    let (mut target, mut noise) = (0.0f64, 0.0f64);
    for (&a, &b) in r.iter().zip(e) {
        let t = alpha * f64::from(a);
        target += t * t;
        noise += (f64::from(b) - t) * (f64::from(b) - t);
    }
    10.0 * ((target + 1e-20) / (noise + 1e-20)).log10()
}

#[cfg(test)]
mod tests {
    use super::si_sdr;

    #[test]
    fn si_sdr_ignores_scale_and_measures_noise() {
        let r: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.1).sin()).collect();
        let scaled: Vec<f32> = r.iter().map(|x| 0.3 * x).collect();
        assert!(si_sdr(&r, &scaled) > 100.0);
        // Adding an orthogonal-ish signal of a tenth of the power gives about 10 dB.
        let noisy: Vec<f32> = r
            .iter()
            .enumerate()
            .map(|(i, x)| x + 0.316 * (i as f32 * 1.7).cos())
            .collect();
        let v = si_sdr(&r, &noisy);
        assert!((v - 10.0).abs() < 1.0, "{v}");
    }
}

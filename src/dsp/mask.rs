//! Wiener-style soft masks.

/// Turns the non-negative source models `models[s][f]` (one slice per source, same length)
/// into masks in place: `M_s = Y_s^p / sum_j Y_j^p` (the generalized Wiener filter of
/// Liutkus & Badeau 2015, "Generalized Wiener filtering with fractional power spectrograms",
/// ICASSP, eq. 6; p = 2 for magnitude models gives the classical Wiener gain).
///
/// The masks of a bin always sum to one, so the masked sources add back up to the mixture:
/// where every model is zero or non-finite the bin is shared equally. Does not allocate.
pub fn wiener_masks_in_place(models: &mut [&mut [f32]], p: f32) {
    let n_sources = models.len();
    if n_sources == 0 {
        return;
    }
    let n = models[0].len();
    let share = 1.0 / n_sources as f32;
    for f in 0..n {
        let mut total = 0.0f32;
        for m in models.iter_mut() {
            let y = m[f];
            let q = if y.is_finite() && y > 0.0 {
                if p == 2.0 {
                    y * y
                } else if p == 1.0 {
                    y
                } else {
                    y.powf(p)
                }
            } else {
                0.0
            };
            m[f] = q;
            total += q;
        }
        if total > f32::MIN_POSITIVE && total.is_finite() {
            let inv = 1.0 / total;
            models.iter_mut().for_each(|m| m[f] *= inv);
        } else {
            models.iter_mut().for_each(|m| m[f] = share);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_sum_to_one_even_for_zero_and_huge_models() {
        let mut a = vec![0.0, 1.0, 1e30, f32::NAN, 3.0];
        let mut b = vec![0.0, 3.0, 1e30, 1.0, 0.0];
        let mut c = vec![0.0, 0.5, 0.0, 2.0, 1e-30];
        wiener_masks_in_place(&mut [&mut a, &mut b, &mut c], 2.0);
        for f in 0..5 {
            let s = a[f] + b[f] + c[f];
            assert!((s - 1.0).abs() < 1e-6, "bin {f}: {s}");
            assert!(a[f] >= 0.0 && b[f] >= 0.0 && c[f] >= 0.0);
        }
        assert!((a[1] - 1.0 / 10.25).abs() < 1e-6);
    }
}

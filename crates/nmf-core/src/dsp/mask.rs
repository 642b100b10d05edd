//! Wiener-style soft masks.

/// Turns the non-negative source models `models[s][f]` (one slice per source, same length)
/// into masks in place: `M_s = Y_s^p / sum_j Y_j^p` (the generalized Wiener filter of
/// Liutkus & Badeau 2015, "Generalized Wiener filtering with fractional power spectrograms",
/// ICASSP, eq. 6; p = 2 for magnitude models gives the classical Wiener gain).
///
/// The masks of a bin always sum to one, so the masked sources add back up to the mixture:
/// where every model is zero or non-finite the bin is shared equally. Does not allocate.
#[inline(always)]
pub fn wiener_masks_in_place(models: &mut [&mut [f32]], p: f32) {
    const CHUNK: usize = 64;
    let n_sources = models.len();
    if n_sources == 0 {
        return;
    }
    let n = models.iter().map(|m| m.len()).min().unwrap_or(0);
    let share = 1.0 / n_sources as f32;
    // Bins in chunks, so that the per-bin total lives on the stack and every loop is a
    // branch-free pass the compiler can vectorize.
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        let mut total = [0.0f32; CHUNK];
        for m in models.iter_mut() {
            for (y, t) in m[start..start + len].iter_mut().zip(&mut total) {
                let q = if p == 2.0 {
                    *y * *y
                } else if p == 1.0 {
                    *y
                } else {
                    y.powf(p)
                };
                // Zero, negative, NaN and infinite models take no share.
                *y = if *y > 0.0 && q.is_finite() { q } else { 0.0 };
                *t += *y;
            }
        }
        let mut inv = [0.0f32; CHUNK];
        for (i, t) in inv.iter_mut().zip(&total) {
            *i = if *t > f32::MIN_POSITIVE && t.is_finite() {
                1.0 / *t
            } else {
                0.0
            };
        }
        for m in models.iter_mut() {
            for (y, i) in m[start..start + len].iter_mut().zip(&inv) {
                // Where every model is zero the bin is shared equally.
                *y = if *i > 0.0 { *y * *i } else { share };
            }
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

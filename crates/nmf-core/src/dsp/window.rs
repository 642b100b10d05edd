//! Analysis and synthesis windows.

/// The periodic Hann window of `n` samples: `w[i] = 0.5 - 0.5 cos(2 pi i / n)`, i.e. the
/// symmetric window of n + 1 points without its last point. Its shifted copies at hop n/2 sum
/// to 1 and its squares at hop n/4 sum to 3/2, so overlap-add reconstruction is exact
/// (Harris 1978, Proc. IEEE 66(1), section IV).
pub fn periodic_hann(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos()) as f32)
        .collect()
}

/// Sum over frames of the squared window at one output sample, for hop `hop`: constant
/// (independent of the sample) when `n / hop` is an integer >= 2 for the periodic Hann window.
pub fn squared_overlap(window: &[f32], hop: usize) -> f32 {
    (0..window.len())
        .step_by(hop)
        .map(|i| window[i] * window[i])
        .sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_hann_squares_overlap_to_a_constant() {
        for &(n, hop) in &[(512usize, 128usize), (2048, 512), (2048, 256), (8192, 2048)] {
            let w = periodic_hann(n);
            let sums: Vec<f32> = (0..hop)
                .map(|o| (o..n).step_by(hop).map(|i| w[i] * w[i]).sum())
                .collect();
            for s in &sums {
                assert!(
                    (s - sums[0]).abs() < 1e-5,
                    "n {n} hop {hop}: {s} vs {}",
                    sums[0]
                );
            }
            assert!((squared_overlap(&w, hop) - sums[0]).abs() < 1e-5);
        }
    }
}

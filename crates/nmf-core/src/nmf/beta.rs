//! The beta divergence and the pieces of its multiplicative updates.
//!
//! For a non-negative observation `x` and model `y`, the beta divergence is
//! (Févotte & Idier 2011, "Algorithms for nonnegative matrix factorization with the
//! beta-divergence", Neural Computation 23(9), eq. 2.1):
//!
//! ```text
//! d_beta(x | y) = x/y - ln(x/y) - 1                                   beta = 0 (Itakura-Saito)
//!               = x ln(x/y) - x + y                                   beta = 1 (Kullback-Leibler)
//!               = (x^b + (b-1) y^b - b x y^(b-1)) / (b (b-1))         otherwise (b = beta; b = 2 is half the squared error)
//! ```
//!
//! Every model value is floored at [`EPS`] before use, so the divergence is finite for a
//! zero model; for beta <= 0 the observation is floored too (Itakura-Saito is undefined at x = 0).

use ndarray::{ArrayView2, Zip};

/// Floor applied to every model value `(W H)_{fn}` and to every entry of W and H after an
/// update, so that no entry of W or H locks at zero under multiplicative updates and a
/// silent source can come back. Units: those of the spectrogram.
pub const EPS: f32 = 1e-10;

/// The exponent gamma(beta) of the multiplicative updates that makes them decrease the
/// divergence monotonically (Févotte & Idier 2011, eq. 4.5 / Table 2):
/// `1/(2-beta)` for beta < 1, `1` for 1 <= beta <= 2, `1/(beta-1)` for beta > 2.
pub fn gamma(beta: f32) -> f32 {
    if beta < 1.0 {
        1.0 / (2.0 - beta)
    } else if beta > 2.0 {
        1.0 / (beta - 1.0)
    } else {
        1.0
    }
}

/// The element-wise divergence `d_beta(x | y)` in f64, with the floors described in the
/// module documentation.
#[inline]
pub fn elementwise(x: f32, y: f32, beta: f32) -> f64 {
    let y = f64::from(y.max(EPS));
    let x = f64::from(x);
    if beta == 0.0 {
        let x = x.max(f64::from(EPS));
        let r = x / y;
        r - r.ln() - 1.0
    } else if beta == 1.0 {
        if x > 0.0 {
            x * (x / y).ln() - x + y
        } else {
            y
        }
    } else if beta == 2.0 {
        0.5 * (x - y) * (x - y)
    } else {
        let b = f64::from(beta);
        let x = if beta < 0.0 { x.max(f64::from(EPS)) } else { x };
        (x.powf(b) + (b - 1.0) * y.powf(b) - b * x * y.powf(b - 1.0)) / (b * (b - 1.0))
    }
}

/// `D_beta(V | Y) = sum_{f,n} d_beta(V_fn | Y_fn)` for a spectrogram `v` and a model `y` of
/// the same shape (n_bins x n_frames). Accumulated in f64.
///
/// # Panics
/// If the shapes differ.
pub fn divergence(v: ArrayView2<f32>, y: ArrayView2<f32>, beta: f32) -> f64 {
    assert_eq!(
        v.dim(),
        y.dim(),
        "divergence: V and its model must have the same shape"
    );
    let mut total = 0.0f64;
    Zip::from(v)
        .and(y)
        .for_each(|&x, &m| total += elementwise(x, m, beta));
    total
}

/// Naive reference for tests: `D_beta(V | W H)` computed from the triple loop of the matrix
/// product and the textbook formula, with no shared code path with the fast fit.
/// `v`: n_bins x n_frames, `w`: n_bins x K, `h`: K x n_frames.
pub fn divergence_naive(
    v: ArrayView2<f32>,
    w: ArrayView2<f32>,
    h: ArrayView2<f32>,
    beta: f32,
) -> f64 {
    let (n_bins, n_frames) = v.dim();
    let k = w.ncols();
    let mut total = 0.0f64;
    for f in 0..n_bins {
        for n in 0..n_frames {
            let mut y = 0.0f64;
            for c in 0..k {
                y += f64::from(w[[f, c]]) * f64::from(h[[c, n]]);
            }
            let y = y.max(f64::from(EPS));
            let mut x = f64::from(v[[f, n]]);
            let b = f64::from(beta);
            total += if beta == 0.0 {
                x = x.max(f64::from(EPS));
                x / y - (x / y).ln() - 1.0
            } else if beta == 1.0 {
                if x == 0.0 {
                    y
                } else {
                    x * (x / y).ln() - x + y
                }
            } else {
                if beta < 0.0 {
                    x = x.max(f64::from(EPS));
                }
                (x.powf(b) + (b - 1.0) * y.powf(b) - b * x * y.powf(b - 1.0)) / (b * (b - 1.0))
            };
        }
    }
    total
}

/// The two element-wise factors of the multiplicative updates for a model value `y` and an
/// observation `x` (Févotte & Idier 2011, eq. 4.1-4.2):
/// numerator factor `x * y^(beta-2)` and denominator factor `y^(beta-1)`.
/// `y` must already be floored at [`EPS`].
#[inline(always)]
pub fn update_factors(x: f32, y: f32, beta: f32) -> (f32, f32) {
    if beta == 1.0 {
        (x / y, 1.0)
    } else if beta == 2.0 {
        (x, y)
    } else if beta == 0.0 {
        let r = 1.0 / y;
        (x * r * r, r)
    } else {
        let p = y.powf(beta - 2.0);
        (x * p, y * p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn special_cases_match_general_formula_in_the_limit() {
        // d_beta is continuous in beta: the general formula near 0, 1 and 2 approaches the special cases.
        for &(x, y) in &[(0.3f32, 0.7f32), (2.0, 0.5), (1.0, 1.0)] {
            for &b in &[0.0f32, 1.0, 2.0] {
                let near = elementwise(x, y, b + 1e-3);
                let exact = elementwise(x, y, b);
                assert!(
                    (near - exact).abs() < 1e-2 * (1.0 + exact.abs()),
                    "beta {b}: {near} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn divergence_is_zero_only_on_equality() {
        let v = array![[1.0f32, 2.0], [3.0, 4.0]];
        for &b in &[0.0f32, 0.5, 1.0, 1.5, 2.0, 3.0] {
            assert!(divergence(v.view(), v.view(), b).abs() < 1e-9);
            let y = v.mapv(|x| x * 1.1);
            assert!(divergence(v.view(), y.view(), b) > 1e-6);
        }
    }

    #[test]
    fn gamma_follows_fevotte_idier() {
        assert_eq!(gamma(0.0), 0.5);
        assert_eq!(gamma(1.5), 1.0);
        assert_eq!(gamma(3.0), 0.5);
    }
}

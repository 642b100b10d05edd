//! The equalization step of the beta = 1 solve: every component's multiplicative factor
//! replaced by the root that equalizes its cost (Févotte & Idier 2011, sec. 4).

use crate::fastmath::{exp_f32, ln_f32};
use crate::simd::{self, Isa};

/// Largest ratio r the equalization takes: larger ones are clamped, which only shortens the
/// step (the root grows with r, and every factor between 1 and the root keeps the cost from
/// rising), and keeps `e^y` finite.
pub(super) const EQUALIZATION_MAX_RATIO: f32 = 1e6;
/// Smallest ratio: below about 0.03 the root (about e^(-1/r)) is below f32's normal range
/// anyway and the caller's floor applies; the clamp keeps `1 / r` finite and maps a zero,
/// negative or NaN ratio to a factor of (almost) zero.
pub(super) const EQUALIZATION_MIN_RATIO: f32 = 1e-20;
/// Below this |ln r| the root comes from its series in ln r, where Newton's residual
/// `e^y - 1 - r y` would cancel in f32.
pub(super) const EQUALIZATION_SERIES: f32 = 0.25;
/// Newton steps after the start: from the starts of [`equalized_factor`] two leave a relative
/// residual of the root's equation below 2e-5 for r from 0.03 to 1e6 (the bound the solver's
/// tests check; three steps reach about 1e-6 against the Lambert-W form of the root,
/// `x = -r W(-e^(-1/r) / r)`).
pub(super) const EQUALIZATION_STEPS: usize = 2;

/// The equalization factor x of one KL component: the root other than 1 of
/// `x - 1 = r ln x` (r = num / den; Févotte & Idier 2011, sec. 4), on the far side of r from
/// 1, written branch-free so that [`equalize`]'s loop over the K components vectorizes.
///
/// In `y = ln x` the root solves `e^y - 1 - r y = 0`, a convex function, by
/// [`EQUALIZATION_STEPS`] Newton steps from a start close to it: `y = r - 1/r` for r < 1
/// (both the root's limit -1/r for small r and `2 ln r` near 1), and for r > 1 two
/// fixed-point steps `y <- ln(1 + r y)` from `2 ln r` (the root's form `y = ln r + ln y` for
/// large r). For `|ln r| < 0.25` the root is its series in `u = ln r`,
/// `y = 2u - u^2/3 + u^3/9 - 19u^4/540 + 17u^5/1620 - 13u^6/4536` (coefficients by matching
/// powers of u in `e^y - 1 = e^u y`; next term below 1e-7 relative there). r is clamped to
/// [[`EQUALIZATION_MIN_RATIO`], [`EQUALIZATION_MAX_RATIO`]] first: a zero, negative or NaN
/// ratio gives a factor of about 0 (the caller's floor applies), as does r below about 0.03,
/// whose root underflows f32.
#[inline(always)]
pub(super) fn equalized_factor(r: f32) -> f32 {
    // f32::max/min return the other operand for NaN: NaN -> the smallest ratio.
    #[allow(clippy::manual_clamp)] // clamp would keep a NaN, which must map to a factor of 0
    let r = r.max(EQUALIZATION_MIN_RATIO).min(EQUALIZATION_MAX_RATIO);
    let u = ln_f32(r);
    let y_small = r - 1.0 / r;
    let y1 = ln_f32(1.0 + r * (2.0 * u).max(0.0));
    let y_large = ln_f32(1.0 + r * y1);
    let mut y = if r < 1.0 { y_small } else { y_large };
    for _ in 0..EQUALIZATION_STEPS {
        let e = exp_f32(y);
        let step = (e - 1.0 - r * y) / (e - r);
        // A zero slope (y at the minimum ln r) only happens for r = 1, where the series
        // below takes over; keep y finite for the select.
        y = if step.is_finite() { y - step } else { y };
        y = y.clamp(-87.0, 88.0);
    }
    let series = 2.0 * u
        + u * u
            * (-1.0 / 3.0
                + u * (1.0 / 9.0 + u * (-19.0 / 540.0 + u * (17.0 / 1620.0 - u * 13.0 / 4536.0))));
    exp_f32(if u.abs() < EQUALIZATION_SERIES {
        series
    } else {
        y
    })
}

/// Replaces every ratio `r_k` of `ratios` (K) by its [`equalized_factor`], compiled for the
/// instruction set `isa` (the loop has no branch, so it runs in vector registers).
#[inline]
pub(super) fn equalize(isa: Isa, ratios: &mut [f32]) {
    simd::dispatch!(isa, |ratios: &mut [f32]| {
        for r in ratios.iter_mut() {
            *r = equalized_factor(*r);
        }
    })
}

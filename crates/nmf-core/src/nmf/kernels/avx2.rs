//! Register-blocked AVX2 + FMA versions of the three tile products of [`super::Kernels`]:
//! every block keeps its 12 (model, project) or 8 (accumulate) accumulators in ymm registers
//! (of 16) over the whole inner dimension, as the AVX-512 versions do with zmm registers.
//! Each output entry is summed over the inner dimension in order, one fused multiply-add per
//! term, so the result does not depend on how the calls are shared out.
//!
//! Layouts as in [`super`]; `fp` and `kp` are multiples of 16 and `nt` of
//! [`super::TILE_STEP`] (checked by the callers).

use std::arch::x86_64::*;

/// Floats per ymm register.
const L: usize = 8;
/// Frames per block of `model` and `project` (divides [`super::TILE_STEP`]).
const NT: usize = 6;
/// Bins per block of `accumulate` (divides 16).
const NF: usize = 4;

const _: () = assert!(super::TILE_STEP.is_multiple_of(NT) && 16 % NF == 0);

/// `y[t, f] = sum_k wt[k, f] ht[t, k]`.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `wt` holds kp x fp, `ht` nt x kp and `y` nt x fp floats.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn model(wt: &[f32], ht: &[f32], y: &mut [f32], fp: usize, kp: usize, nt: usize) {
    let (wt, ht, y) = (wt.as_ptr(), ht.as_ptr(), y.as_mut_ptr());
    for t0 in (0..nt).step_by(NT) {
        for f0 in (0..fp).step_by(2 * L) {
            let mut acc = [[_mm256_setzero_ps(); 2]; NT];
            let hb = ht.add(t0 * kp);
            for k in 0..kp {
                let wrow = wt.add(k * fp + f0);
                let (w0, w1) = (_mm256_loadu_ps(wrow), _mm256_loadu_ps(wrow.add(L)));
                for (t, a) in acc.iter_mut().enumerate() {
                    let h = _mm256_broadcast_ss(&*hb.add(t * kp + k));
                    a[0] = _mm256_fmadd_ps(w0, h, a[0]);
                    a[1] = _mm256_fmadd_ps(w1, h, a[1]);
                }
            }
            for (t, a) in acc.iter().enumerate() {
                let out = y.add((t0 + t) * fp + f0);
                _mm256_storeu_ps(out, a[0]);
                _mm256_storeu_ps(out.add(L), a[1]);
            }
        }
    }
}

/// `out[t, k] = sum_f r[t, f] wk[f, k]`.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `wk` holds fp x kp, `r` nt x fp and `out` nt x kp floats.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn project(wk: &[f32], r: &[f32], out: &mut [f32], fp: usize, kp: usize, nt: usize) {
    let (wk, r, out) = (wk.as_ptr(), r.as_ptr(), out.as_mut_ptr());
    for t0 in (0..nt).step_by(NT) {
        for k0 in (0..kp).step_by(2 * L) {
            let mut acc = [[_mm256_setzero_ps(); 2]; NT];
            let rb = r.add(t0 * fp);
            for f in 0..fp {
                let wrow = wk.add(f * kp + k0);
                let (w0, w1) = (_mm256_loadu_ps(wrow), _mm256_loadu_ps(wrow.add(L)));
                for (t, a) in acc.iter_mut().enumerate() {
                    let x = _mm256_broadcast_ss(&*rb.add(t * fp + f));
                    a[0] = _mm256_fmadd_ps(w0, x, a[0]);
                    a[1] = _mm256_fmadd_ps(w1, x, a[1]);
                }
            }
            for (t, a) in acc.iter().enumerate() {
                let o = out.add((t0 + t) * kp + k0);
                _mm256_storeu_ps(o, a[0]);
                _mm256_storeu_ps(o.add(L), a[1]);
            }
        }
    }
}

/// `acc[f, k] += sum_t r[t, f] ht[t, k]` (the tile's sum formed first, then added).
///
/// # Safety
/// The CPU supports AVX2 and FMA; `r` holds nt x fp, `ht` nt x kp and `acc` fp x kp floats.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn accumulate(r: &[f32], ht: &[f32], acc: &mut [f32], fp: usize, kp: usize, nt: usize) {
    let (r, ht, acc) = (r.as_ptr(), ht.as_ptr(), acc.as_mut_ptr());
    for f0 in (0..fp).step_by(NF) {
        for k0 in (0..kp).step_by(2 * L) {
            let mut s = [[_mm256_setzero_ps(); 2]; NF];
            for t in 0..nt {
                let hrow = ht.add(t * kp + k0);
                let (h0, h1) = (_mm256_loadu_ps(hrow), _mm256_loadu_ps(hrow.add(L)));
                let rrow = r.add(t * fp + f0);
                for (i, a) in s.iter_mut().enumerate() {
                    let x = _mm256_broadcast_ss(&*rrow.add(i));
                    a[0] = _mm256_fmadd_ps(h0, x, a[0]);
                    a[1] = _mm256_fmadd_ps(h1, x, a[1]);
                }
            }
            for (i, a) in s.iter().enumerate() {
                let o = acc.add((f0 + i) * kp + k0);
                _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), a[0]));
                _mm256_storeu_ps(o.add(L), _mm256_add_ps(_mm256_loadu_ps(o.add(L)), a[1]));
            }
        }
    }
}

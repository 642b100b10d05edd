//! Small dense kernels of the fused, frame-tiled multiplicative-update pass of
//! [`super::fit`]: the three matrix products of one tile of frames and the element-wise
//! factors. Compiled portable, for AVX2 + FMA and for AVX-512 (hand-written intrinsics for
//! the products at both: the AVX2 ones in [`avx2`]), chosen at run time through
//! [`crate::simd`].
//!
//! Layouts (all row-major, zero-padded; `fp` = bins rounded up to 16, `kp` = components
//! rounded up to 16, `nt` = frames of the tile, a multiple of [`TILE_STEP`]):
//! - `wt`: W^T, kp x fp (every template contiguous over bins);
//! - `wk`: W, fp x kp (every bin's K weights contiguous);
//! - `ht`: H^T of the tile, nt x kp (every frame's activations contiguous);
//! - `y` / `r`: a model or factor tile, nt x fp (every frame's bins contiguous).

use crate::fastmath::{exp_f32, exp_f64, ln_f32, ln_f64};
use crate::simd::{self, Isa, Level};

#[cfg(target_arch = "x86_64")]
mod avx2;

/// Frames of a tile are processed by blocks of this many (tiles must be a multiple of it).
pub const TILE_STEP: usize = 12;

/// The kernels, bound to an instruction set (module [`crate::simd`]).
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    isa: Isa,
}

impl Kernels {
    /// The kernels for the best instruction set of this CPU ([`Isa::best`]: AVX-512 F, DQ
    /// and VL with AVX2 + FMA, else AVX2 + FMA, else portable code).
    pub fn detect() -> Self {
        Self::new(Isa::best())
    }

    /// The portable kernels only (for tests).
    pub fn portable() -> Self {
        Self::new(Isa::PORTABLE)
    }

    /// The kernels compiled for `isa`.
    pub fn new(isa: Isa) -> Self {
        Self { isa }
    }

    /// The instruction set these kernels run with.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// `y[t, f] = sum_k wt[k, f] ht[t, k]` (the model W H of a tile, nt x fp, unfloored).
    pub fn model(&self, wt: &[f32], ht: &[f32], y: &mut [f32], fp: usize, kp: usize, nt: usize) {
        check(fp, kp, nt);
        assert!(wt.len() >= kp * fp && ht.len() >= nt * kp && y.len() >= nt * fp);
        simd::dispatch!(self.isa, |wt: &[f32],
                                   ht: &[f32],
                                   y: &mut [f32],
                                   fp: usize,
                                   kp: usize,
                                   nt: usize| {
            #[cfg(target_arch = "x86_64")]
            if ISA == Level::Avx512 {
                // SAFETY: compiled with AVX-512F; the slices are long enough (asserted).
                return unsafe { avx512::model(wt, ht, y, fp, kp, nt) };
            }
            #[cfg(target_arch = "x86_64")]
            if ISA == Level::Avx2 {
                // SAFETY: compiled with AVX2 and FMA; the slices are long enough (asserted).
                return unsafe { avx2::model(wt, ht, y, fp, kp, nt) };
            }
            model_generic(wt, ht, y, fp, kp, nt)
        })
    }

    /// `out[t, k] = sum_f r[t, f] wk[f, k]` (W^T R of a tile, nt x kp).
    pub fn project(&self, wk: &[f32], r: &[f32], out: &mut [f32], fp: usize, kp: usize, nt: usize) {
        check(fp, kp, nt);
        assert!(wk.len() >= fp * kp && r.len() >= nt * fp && out.len() >= nt * kp);
        simd::dispatch!(self.isa, |wk: &[f32],
                                   r: &[f32],
                                   out: &mut [f32],
                                   fp: usize,
                                   kp: usize,
                                   nt: usize| {
            #[cfg(target_arch = "x86_64")]
            if ISA == Level::Avx512 {
                // SAFETY: as in `model`.
                return unsafe { avx512::project(wk, r, out, fp, kp, nt) };
            }
            #[cfg(target_arch = "x86_64")]
            if ISA == Level::Avx2 {
                // SAFETY: compiled with AVX2 and FMA; the slices are long enough (asserted).
                return unsafe { avx2::project(wk, r, out, fp, kp, nt) };
            }
            project_generic(wk, r, out, fp, kp, nt)
        })
    }

    /// `acc[f, k] += sum_t r[t, f] ht[t, k]` (R H^T of a tile added to fp x kp).
    pub fn accumulate(
        &self,
        r: &[f32],
        ht: &[f32],
        acc: &mut [f32],
        fp: usize,
        kp: usize,
        nt: usize,
    ) {
        check(fp, kp, nt);
        assert!(r.len() >= nt * fp && ht.len() >= nt * kp && acc.len() >= fp * kp);
        simd::dispatch!(self.isa, |r: &[f32],
                                   ht: &[f32],
                                   acc: &mut [f32],
                                   fp: usize,
                                   kp: usize,
                                   nt: usize| {
            #[cfg(target_arch = "x86_64")]
            if ISA == Level::Avx512 {
                // SAFETY: as in `model`.
                return unsafe { avx512::accumulate(r, ht, acc, fp, kp, nt) };
            }
            #[cfg(target_arch = "x86_64")]
            if ISA == Level::Avx2 {
                // SAFETY: compiled with AVX2 and FMA; the slices are long enough (asserted).
                return unsafe { avx2::accumulate(r, ht, acc, fp, kp, nt) };
            }
            accumulate_generic(r, ht, acc, fp, kp, nt)
        })
    }

    /// Beta = 1 factor of a tile: for every valid bin (`f < n_bins`) of every valid frame
    /// (`t < n_valid`), `y <- V / max(y, EPS)`, and 0 elsewhere. With `cost`, returns the
    /// Kullback-Leibler divergence `sum V ln(V/Y) - V + Y` of the valid entries (f64), else 0.
    /// `v` is the spectrogram tile (nt x fp, frames-major).
    #[allow(clippy::too_many_arguments)]
    pub fn kl_ratio(
        &self,
        v: &[f32],
        y: &mut [f32],
        fp: usize,
        n_bins: usize,
        nt: usize,
        n_valid: usize,
        cost: bool,
    ) -> f64 {
        simd::dispatch!(self.isa, |v: &[f32],
                                   y: &mut [f32],
                                   fp: usize,
                                   n_bins: usize,
                                   nt: usize,
                                   n_valid: usize,
                                   cost: bool|
         -> f64 {
            kl_ratio_generic(v, y, fp, n_bins, nt, n_valid, cost)
        })
    }

    /// General-beta factors of a tile (Févotte & Idier 2011, eq. 4.1-4.2): for every valid
    /// entry (`f < n_bins`, `t < n_valid`), with `y` floored at EPS, `y <- V y^(beta-2)`
    /// (numerator factor) and `b <- y^(beta-1)` (denominator factor); 0 elsewhere. With
    /// `cost`, returns `sum d_beta(V | Y)` over the valid entries (f64), else 0.
    /// `v`, `y`, `b`: nt x fp, frames-major.
    #[allow(clippy::too_many_arguments)]
    pub fn beta_factors(
        &self,
        v: &[f32],
        y: &mut [f32],
        b: &mut [f32],
        fp: usize,
        n_bins: usize,
        nt: usize,
        n_valid: usize,
        beta: f32,
        cost: bool,
    ) -> f64 {
        simd::dispatch!(self.isa, |v: &[f32],
                                   y: &mut [f32],
                                   b: &mut [f32],
                                   fp: usize,
                                   n_bins: usize,
                                   nt: usize,
                                   n_valid: usize,
                                   beta: f32,
                                   cost: bool|
         -> f64 {
            beta_factors_generic(v, y, b, fp, n_bins, nt, n_valid, beta, cost)
        })
    }
}

fn check(fp: usize, kp: usize, nt: usize) {
    assert!(fp.is_multiple_of(16) && kp.is_multiple_of(16) && nt.is_multiple_of(TILE_STEP));
}

#[inline(always)]
fn model_generic(wt: &[f32], ht: &[f32], y: &mut [f32], fp: usize, kp: usize, nt: usize) {
    for t in 0..nt {
        let yrow = &mut y[t * fp..(t + 1) * fp];
        yrow.fill(0.0);
        for k in 0..kp {
            let h = ht[t * kp + k];
            for (o, &w) in yrow.iter_mut().zip(&wt[k * fp..(k + 1) * fp]) {
                *o += w * h;
            }
        }
    }
}

#[inline(always)]
fn project_generic(wk: &[f32], r: &[f32], out: &mut [f32], fp: usize, kp: usize, nt: usize) {
    for t in 0..nt {
        let orow = &mut out[t * kp..(t + 1) * kp];
        orow.fill(0.0);
        for f in 0..fp {
            let x = r[t * fp + f];
            for (o, &w) in orow.iter_mut().zip(&wk[f * kp..(f + 1) * kp]) {
                *o += w * x;
            }
        }
    }
}

#[inline(always)]
fn accumulate_generic(r: &[f32], ht: &[f32], acc: &mut [f32], fp: usize, kp: usize, nt: usize) {
    for t in 0..nt {
        let hrow = &ht[t * kp..(t + 1) * kp];
        for f in 0..fp {
            let x = r[t * fp + f];
            for (a, &h) in acc[f * kp..(f + 1) * kp].iter_mut().zip(hrow) {
                *a += x * h;
            }
        }
    }
}

#[inline(always)]
fn kl_ratio_generic(
    v: &[f32],
    y: &mut [f32],
    fp: usize,
    n_bins: usize,
    nt: usize,
    n_valid: usize,
    cost: bool,
) -> f64 {
    let eps = super::beta::EPS;
    let mut total = 0.0f64;
    for t in 0..nt {
        let yrow = &mut y[t * fp..(t + 1) * fp];
        if t >= n_valid {
            yrow.fill(0.0);
            continue;
        }
        let vrow = &v[t * fp..(t + 1) * fp];
        if cost {
            // Per-frame f64 partial sums, 8 lanes so the loop vectorizes.
            let mut part = [0.0f64; 8];
            let (vc, vr) = vrow[..n_bins].split_at(n_bins - n_bins % 8);
            let (yc, yr) = yrow[..n_bins].split_at(vc.len());
            let term = |x: f32, y: f32| -> f64 {
                let y = f64::from(y.max(eps));
                let x = f64::from(x);
                // x = 0 gives ln of a tiny ratio times 0: the term is y, as in `elementwise`.
                let xs = if x > 0.0 { x } else { 1.0 };
                let l = ln_f64(xs / y);
                if x > 0.0 {
                    x * l - x + y
                } else {
                    y
                }
            };
            for (xv, yv) in vc.chunks_exact(8).zip(yc.chunks_exact(8)) {
                for i in 0..8 {
                    part[i] += term(xv[i], yv[i]);
                }
            }
            let tail: f64 = vr.iter().zip(yr.iter()).map(|(&x, &y)| term(x, y)).sum();
            total += part.iter().sum::<f64>() + tail;
        }
        for (o, &x) in yrow[..n_bins].iter_mut().zip(&vrow[..n_bins]) {
            *o = x / o.max(eps);
        }
        yrow[n_bins..].fill(0.0);
    }
    total
}

/// Register-blocked AVX-512 versions: every block keeps its accumulators (at most 24 of the
/// 32 zmm registers) in registers over the whole inner dimension.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::TILE_STEP as NT;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn model(wt: &[f32], ht: &[f32], y: &mut [f32], fp: usize, kp: usize, nt: usize) {
        let (wt, ht, y) = (wt.as_ptr(), ht.as_ptr(), y.as_mut_ptr());
        for t0 in (0..nt).step_by(NT) {
            let mut f0 = 0;
            while f0 + 32 <= fp {
                model_block::<2>(wt, ht, y, fp, kp, t0, f0);
                f0 += 32;
            }
            if f0 < fp {
                model_block::<1>(wt, ht, y, fp, kp, t0, f0);
            }
        }
    }

    #[inline(always)]
    unsafe fn model_block<const NV: usize>(
        wt: *const f32,
        ht: *const f32,
        y: *mut f32,
        fp: usize,
        kp: usize,
        t0: usize,
        f0: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); NV]; NT];
        let hb = ht.add(t0 * kp);
        for k in 0..kp {
            let wrow = wt.add(k * fp + f0);
            let mut wv = [_mm512_setzero_ps(); NV];
            for (v, w) in wv.iter_mut().enumerate() {
                *w = _mm512_loadu_ps(wrow.add(16 * v));
            }
            for (t, a) in acc.iter_mut().enumerate() {
                let h = _mm512_set1_ps(*hb.add(t * kp + k));
                for v in 0..NV {
                    a[v] = _mm512_fmadd_ps(wv[v], h, a[v]);
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            let out = y.add((t0 + t) * fp + f0);
            for (v, x) in a.iter().enumerate() {
                _mm512_storeu_ps(out.add(16 * v), *x);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn project(wk: &[f32], r: &[f32], out: &mut [f32], fp: usize, kp: usize, nt: usize) {
        let (wk, r, out) = (wk.as_ptr(), r.as_ptr(), out.as_mut_ptr());
        for t0 in (0..nt).step_by(NT) {
            let mut k0 = 0;
            while k0 + 32 <= kp {
                project_block::<2>(wk, r, out, fp, kp, t0, k0);
                k0 += 32;
            }
            if k0 < kp {
                project_block::<1>(wk, r, out, fp, kp, t0, k0);
            }
        }
    }

    #[inline(always)]
    unsafe fn project_block<const NV: usize>(
        wk: *const f32,
        r: *const f32,
        out: *mut f32,
        fp: usize,
        kp: usize,
        t0: usize,
        k0: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); NV]; NT];
        let rb = r.add(t0 * fp);
        for f in 0..fp {
            let wrow = wk.add(f * kp + k0);
            let mut wv = [_mm512_setzero_ps(); NV];
            for (v, w) in wv.iter_mut().enumerate() {
                *w = _mm512_loadu_ps(wrow.add(16 * v));
            }
            for (t, a) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*rb.add(t * fp + f));
                for v in 0..NV {
                    a[v] = _mm512_fmadd_ps(wv[v], x, a[v]);
                }
            }
        }
        for (t, a) in acc.iter().enumerate() {
            let o = out.add((t0 + t) * kp + k0);
            for (v, x) in a.iter().enumerate() {
                _mm512_storeu_ps(o.add(16 * v), *x);
            }
        }
    }

    /// Bins per block of `accumulate`.
    const NF: usize = 8;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn accumulate(
        r: &[f32],
        ht: &[f32],
        acc: &mut [f32],
        fp: usize,
        kp: usize,
        nt: usize,
    ) {
        let (r, ht, acc) = (r.as_ptr(), ht.as_ptr(), acc.as_mut_ptr());
        for f0 in (0..fp).step_by(NF) {
            let mut k0 = 0;
            while k0 + 32 <= kp {
                accumulate_block::<2>(r, ht, acc, fp, kp, nt, f0, k0);
                k0 += 32;
            }
            if k0 < kp {
                accumulate_block::<1>(r, ht, acc, fp, kp, nt, f0, k0);
            }
        }
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn accumulate_block<const NV: usize>(
        r: *const f32,
        ht: *const f32,
        acc: *mut f32,
        fp: usize,
        kp: usize,
        nt: usize,
        f0: usize,
        k0: usize,
    ) {
        let mut s = [[_mm512_setzero_ps(); NV]; NF];
        for t in 0..nt {
            let hrow = ht.add(t * kp + k0);
            let mut hv = [_mm512_setzero_ps(); NV];
            for (v, h) in hv.iter_mut().enumerate() {
                *h = _mm512_loadu_ps(hrow.add(16 * v));
            }
            let rrow = r.add(t * fp + f0);
            for (i, a) in s.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*rrow.add(i));
                for v in 0..NV {
                    a[v] = _mm512_fmadd_ps(hv[v], x, a[v]);
                }
            }
        }
        for (i, a) in s.iter().enumerate() {
            let o = acc.add((f0 + i) * kp + k0);
            for (v, x) in a.iter().enumerate() {
                let p = o.add(16 * v);
                _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), *x));
            }
        }
    }
}

/// The element-wise beta divergence (module [`super::beta`]) for beta other than 1, with the
/// same floors, in the branch-free form of [`ln_f64`] and [`exp_f64`].
#[inline(always)]
fn beta_term(x: f32, y: f32, beta: f64) -> f64 {
    let eps = f64::from(super::beta::EPS);
    let y = f64::from(y).max(eps);
    let x = f64::from(x);
    if beta == 0.0 {
        let r = x.max(eps) / y;
        r - ln_f64(r) - 1.0
    } else if beta == 2.0 {
        0.5 * (x - y) * (x - y)
    } else {
        let x = if beta < 0.0 { x.max(eps) } else { x };
        let xb = if x > 0.0 {
            exp_f64(beta * ln_f64(if x > 0.0 { x } else { 1.0 }))
        } else {
            0.0
        };
        let yb1 = exp_f64((beta - 1.0) * ln_f64(y));
        (xb + (beta - 1.0) * yb1 * y - beta * x * yb1) / (beta * (beta - 1.0))
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn beta_factors_generic(
    v: &[f32],
    y: &mut [f32],
    b: &mut [f32],
    fp: usize,
    n_bins: usize,
    nt: usize,
    n_valid: usize,
    beta: f32,
    cost: bool,
) -> f64 {
    let eps = super::beta::EPS;
    let bd = f64::from(beta);
    let mut total = 0.0f64;
    for t in 0..nt {
        let (yrow, brow) = (&mut y[t * fp..(t + 1) * fp], &mut b[t * fp..(t + 1) * fp]);
        if t >= n_valid {
            yrow.fill(0.0);
            brow.fill(0.0);
            continue;
        }
        let vrow = &v[t * fp..(t + 1) * fp];
        if cost {
            let mut part = [0.0f64; 8];
            let (vc, vr) = vrow[..n_bins].split_at(n_bins - n_bins % 8);
            let (yc, yr) = yrow[..n_bins].split_at(vc.len());
            for (xv, yv) in vc.chunks_exact(8).zip(yc.chunks_exact(8)) {
                for i in 0..8 {
                    part[i] += beta_term(xv[i], yv[i], bd);
                }
            }
            let tail: f64 = vr.iter().zip(yr).map(|(&x, &m)| beta_term(x, m, bd)).sum();
            total += part.iter().sum::<f64>() + tail;
        }
        let rows = yrow[..n_bins]
            .iter_mut()
            .zip(brow[..n_bins].iter_mut())
            .zip(&vrow[..n_bins]);
        if beta == 0.0 {
            for ((o, p), &x) in rows {
                let r = 1.0 / o.max(eps);
                (*o, *p) = (x * r * r, r);
            }
        } else if beta == 2.0 {
            for ((o, p), &x) in rows {
                (*p, *o) = (o.max(eps), x);
            }
        } else {
            // y^(beta-2) = exp((beta-2) ln y), in f32 (the precision of the products).
            for ((o, p), &x) in rows {
                let m = o.max(eps);
                let q = exp_f32((beta - 2.0) * ln_f32(m));
                (*o, *p) = (x * q, m * q);
            }
        }
        yrow[n_bins..].fill(0.0);
        brow[n_bins..].fill(0.0);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 1000) as f32 / 1000.0
            })
            .collect()
    }

    #[test]
    fn simd_kernels_match_portable_ones() {
        let (fp, kp, nt) = (48, 48, 24);
        let wt = data(kp * fp, 1);
        let wk = data(fp * kp, 2);
        let ht = data(nt * kp, 3);
        let r = data(nt * fp, 4);
        let slow = Kernels::portable();
        let close = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + x.abs()))
        };
        for isa in Isa::variants().into_iter().skip(1) {
            let (name, fast) = (format!("{isa:?}"), Kernels::new(isa));
            let (mut y1, mut y2) = (vec![0.0; nt * fp], vec![0.0; nt * fp]);
            fast.model(&wt, &ht, &mut y1, fp, kp, nt);
            slow.model(&wt, &ht, &mut y2, fp, kp, nt);
            assert!(close(&y1, &y2), "{name}");
            let (mut o1, mut o2) = (vec![0.0; nt * kp], vec![0.0; nt * kp]);
            fast.project(&wk, &r, &mut o1, fp, kp, nt);
            slow.project(&wk, &r, &mut o2, fp, kp, nt);
            assert!(close(&o1, &o2), "{name}");
            let (mut a1, mut a2) = (vec![1.0; fp * kp], vec![1.0; fp * kp]);
            fast.accumulate(&r, &ht, &mut a1, fp, kp, nt);
            slow.accumulate(&r, &ht, &mut a2, fp, kp, nt);
            assert!(close(&a1, &a2), "{name}");
        }
    }

    #[test]
    fn exp_and_beta_term_are_accurate() {
        for &x in &[
            -700.0, -20.0, -1.0, -1e-9, 0.0, 1e-9, 0.3, 1.0, 5.0, 88.0, 700.0,
        ] {
            let (a, b) = (exp_f64(x), f64::exp(x));
            assert!((a - b).abs() <= 4e-16 * b, "{x}: {a} vs {b}");
        }
        for &beta in &[-0.5f32, 0.0, 0.5, 1.5, 2.0, 3.0] {
            for &(x, y) in &[(0.3f32, 0.7f32), (2.0, 0.5), (0.0, 0.25), (1.0, 1.0001)] {
                let a = beta_term(x, y, f64::from(beta));
                let b = crate::nmf::beta::elementwise(x, y, beta);
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "beta {beta}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn f32_pow_is_accurate() {
        for &y in &[1e-10f32, 1e-6, 0.01, 0.5, 1.0, 1.7, 30.0, 1e5, 1e12] {
            for &e in &[-3.0f32, -1.5, -1.0, -0.5, 0.5, 1.0, 2.0] {
                let (a, b) = (exp_f32(e * ln_f32(y)), y.powf(e));
                // The f32 rounding of e ln y (about 6e-8 |e ln y|) bounds the accuracy.
                let tol = 2e-7 * (1.0 + (e * y.ln()).abs());
                assert!((a - b).abs() <= tol * b, "{y}^{e}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn ln_is_accurate() {
        for &x in &[
            1e-80, 1e-10, 0.3, 0.999_999, 1.0, 1.000_001, 1.5, 2.0, 7.0, 1e30,
        ] {
            let (a, b) = (ln_f64(x), f64::ln(x));
            assert!((a - b).abs() <= 1e-15 * (1.0 + b.abs()), "{x}: {a} vs {b}");
        }
    }
}

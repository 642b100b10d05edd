//! The frame solver's kernels: the model W h, the fused beta = 1 numerator (all components, or
//! the moving ones of a screened solve) and the projection W^T x, blocked so that the
//! accumulators stay in vector registers; compiled per instruction set through [`crate::simd`].

use crate::nmf::beta::EPS;
use crate::simd::{self, Isa};

/// `wh = max(W h, EPS)` with `wt` = W^T (K x n_bins).
#[inline]
pub(super) fn model(isa: Isa, wt: &[f32], h: &[f32], wh: &mut [f32]) {
    simd::dispatch!(isa, |wt: &[f32], h: &[f32], wh: &mut [f32]| {
        model_kernel::<{ ISA.fma() }>(wt, h, wh)
    })
}

/// `num[k] = sum_f W[f, k] v[f] / max((W h)[f], EPS)`: the beta = 1 numerator, in one pass.
#[inline]
pub(super) fn kl_numerator(
    isa: Isa,
    wt: &[f32],
    h: &[f32],
    v: &[f32],
    num: &mut [f32],
    partial: &mut [f32],
    wb: &[f32],
) {
    simd::dispatch!(isa, |wt: &[f32],
                          h: &[f32],
                          v: &[f32],
                          num: &mut [f32],
                          partial: &mut [f32],
                          wb: &[f32]| {
        kl_numerator_kernel::<{ ISA.fma() }>(wt, h, v, num, partial, wb)
    })
}

/// `num[j] = sum_f W[f, c] v[f] / max(held[f] + sum over moving c' of W[f, c'] h[c'], EPS)`
/// for `c = active[j]`: [`kl_numerator`] over the moving components of
/// [`SolveRule::screen`] only, the held ones' model `held` (n_bins) taken as it is.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn kl_numerator_screened(
    isa: Isa,
    wt: &[f32],
    h: &[f32],
    v: &[f32],
    num: &mut [f32],
    partial: &mut [f32],
    wb: &[f32],
    active: &[usize],
    held: &[f32],
) {
    simd::dispatch!(isa, |wt: &[f32],
                          h: &[f32],
                          v: &[f32],
                          num: &mut [f32],
                          partial: &mut [f32],
                          wb: &[f32],
                          active: &[usize],
                          held: &[f32]| {
        kl_numerator_screened_kernel::<{ ISA.fma() }>(wt, h, v, num, partial, wb, active, held)
    })
}

/// `out[k] = sum_f W[f, k] x[f]` with `wt` = W^T (K x n_bins).
#[inline]
pub(super) fn project(isa: Isa, wt: &[f32], x: &[f32], out: &mut [f32]) {
    simd::dispatch!(isa, |wt: &[f32], x: &[f32], out: &mut [f32]| {
        project_kernel::<{ ISA.fma() }>(wt, x, out)
    })
}

/// Bins per register block: 64 f32 accumulators stay in vector registers.
pub(super) const BLOCK: usize = 64;
/// Width of the partial sums of the reductions.
pub(super) const LANES: usize = 16;

/// `a * b + c`, fused when the kernel is compiled with FMA (Rust never contracts on its own).
#[inline(always)]
pub(super) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The block `[start, start + BLOCK)` of template `c`.
#[inline(always)]
pub(super) fn block(wt: &[f32], n: usize, c: usize, start: usize) -> &[f32; BLOCK] {
    wt[c * n + start..c * n + start + BLOCK]
        .try_into()
        .expect("block inside the template")
}

/// Model of bin `f` alone, `sum_c W[f, c] h[c]`: the bins after the last full block.
#[inline(always)]
pub(super) fn bin_model<const FMA: bool>(wt: &[f32], n: usize, h: &[f32], f: usize) -> f32 {
    h.iter()
        .enumerate()
        .fold(0.0, |acc, (c, &hc)| madd::<FMA>(wt[c * n + f], hc, acc))
}

/// Model of one block of bins: `sum_c W[start.., c] h[c]`, accumulated in registers.
#[inline(always)]
pub(super) fn block_model<const FMA: bool>(
    wt: &[f32],
    n: usize,
    h: &[f32],
    start: usize,
) -> [f32; BLOCK] {
    let mut acc = [0.0f32; BLOCK];
    for (c, &hc) in h.iter().enumerate() {
        let row = block(wt, n, c, start);
        for i in 0..BLOCK {
            acc[i] = madd::<FMA>(row[i], hc, acc[i]);
        }
    }
    acc
}

#[inline(always)]
pub(super) fn model_kernel<const FMA: bool>(wt: &[f32], h: &[f32], wh: &mut [f32]) {
    let n = wh.len();
    let full = n - n % BLOCK;
    for start in (0..full).step_by(BLOCK) {
        let acc = block_model::<FMA>(wt, n, h, start);
        for (y, a) in wh[start..start + BLOCK].iter_mut().zip(acc) {
            *y = a.max(EPS);
        }
    }
    for (f, m) in wh.iter_mut().enumerate().take(n).skip(full) {
        *m = bin_model::<FMA>(wt, n, h, f).max(EPS);
    }
}

/// Adds one template's share of a block, `row[i] * r[i]` for the BLOCK bins, into its LANES
/// partial sums `p`: two short chains of multiply-adds, then one load and one store of the
/// partial sums, so that no addition waits long on another.
#[inline(always)]
pub(super) fn fold_block<const FMA: bool>(row: &[f32; BLOCK], r: &[f32; BLOCK], p: &mut [f32]) {
    for i in 0..LANES {
        let a = madd::<FMA>(row[LANES + i], r[LANES + i], row[i] * r[i]);
        let b = madd::<FMA>(
            row[3 * LANES + i],
            r[3 * LANES + i],
            row[2 * LANES + i] * r[2 * LANES + i],
        );
        p[i] += a + b;
    }
}

/// For a block of bins: the model, the ratio v / model, and its projection on every template
/// while the block of W is still in L1. `wb` is W in blocks (see [`FrameSolver`]); the
/// partial sums per template go to `partial` (K x LANES) and are reduced
/// at the end, so no addition waits on another.
#[inline(always)]
pub(super) fn kl_numerator_kernel<const FMA: bool>(
    wt: &[f32],
    h: &[f32],
    v: &[f32],
    num: &mut [f32],
    partial: &mut [f32],
    wb: &[f32],
) {
    let n = v.len();
    let k = h.len();
    let full = n - n % BLOCK;
    let partial = &mut partial[..k * LANES];
    partial.fill(0.0);
    for (b, w_block) in wb.chunks_exact(k * BLOCK).enumerate() {
        // Two interleaved sums over the components keep twice as many FMAs in flight.
        let (mut even, mut odd) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        let mut pairs = w_block.chunks_exact(2 * BLOCK).zip(h.chunks_exact(2));
        for (rows, hc) in &mut pairs {
            let (r0, r1) = rows.split_at(BLOCK);
            let (r0, r1): (&[f32; BLOCK], &[f32; BLOCK]) =
                (r0.try_into().expect("BLOCK"), r1.try_into().expect("BLOCK"));
            for i in 0..BLOCK {
                even[i] = madd::<FMA>(r0[i], hc[0], even[i]);
                odd[i] = madd::<FMA>(r1[i], hc[1], odd[i]);
            }
        }
        if k % 2 == 1 {
            let row: &[f32; BLOCK] = w_block[(k - 1) * BLOCK..].try_into().expect("BLOCK");
            for i in 0..BLOCK {
                even[i] = madd::<FMA>(row[i], h[k - 1], even[i]);
            }
        }
        let mut acc = [0.0f32; BLOCK];
        for i in 0..BLOCK {
            acc[i] = even[i] + odd[i];
        }
        let vb: &[f32; BLOCK] = v[b * BLOCK..(b + 1) * BLOCK]
            .try_into()
            .expect("block inside the frame");
        let mut r = [0.0f32; BLOCK];
        for i in 0..BLOCK {
            r[i] = vb[i] / acc[i].max(EPS);
        }
        for (row, p) in w_block
            .chunks_exact(BLOCK)
            .zip(partial.chunks_exact_mut(LANES))
        {
            fold_block::<FMA>(row.try_into().expect("BLOCK values"), &r, p);
        }
    }
    for (o, p) in num.iter_mut().zip(partial.chunks_exact(LANES)) {
        *o = p.iter().sum();
    }
    for f in full..n {
        let r = v[f] / bin_model::<FMA>(wt, n, h, f).max(EPS);
        for (c, o) in num.iter_mut().enumerate() {
            *o = madd::<FMA>(wt[c * n + f], r, *o);
        }
    }
}

/// [`kl_numerator_kernel`] over the components `active` (numerators in their order), the
/// model starting from `held` instead of zero.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn kl_numerator_screened_kernel<const FMA: bool>(
    wt: &[f32],
    h: &[f32],
    v: &[f32],
    num: &mut [f32],
    partial: &mut [f32],
    wb: &[f32],
    active: &[usize],
    held: &[f32],
) {
    let n = v.len();
    let k = h.len();
    let full = n - n % BLOCK;
    let partial = &mut partial[..active.len() * LANES];
    partial.fill(0.0);
    let row = |w_block: &[f32], c: usize| -> [f32; BLOCK] {
        w_block[c * BLOCK..(c + 1) * BLOCK]
            .try_into()
            .expect("BLOCK values")
    };
    for (b, w_block) in wb.chunks_exact(k * BLOCK).enumerate() {
        let mut even: [f32; BLOCK] = held[b * BLOCK..(b + 1) * BLOCK]
            .try_into()
            .expect("block inside the frame");
        let mut odd = [0.0f32; BLOCK];
        let mut pairs = active.chunks_exact(2);
        for cs in &mut pairs {
            let (r0, r1) = (row(w_block, cs[0]), row(w_block, cs[1]));
            let (h0, h1) = (h[cs[0]], h[cs[1]]);
            for i in 0..BLOCK {
                even[i] = madd::<FMA>(r0[i], h0, even[i]);
                odd[i] = madd::<FMA>(r1[i], h1, odd[i]);
            }
        }
        if let [c] = *pairs.remainder() {
            let r0 = row(w_block, c);
            for i in 0..BLOCK {
                even[i] = madd::<FMA>(r0[i], h[c], even[i]);
            }
        }
        let vb: &[f32; BLOCK] = v[b * BLOCK..(b + 1) * BLOCK]
            .try_into()
            .expect("block inside the frame");
        let mut r = [0.0f32; BLOCK];
        for i in 0..BLOCK {
            r[i] = vb[i] / (even[i] + odd[i]).max(EPS);
        }
        for (&c, p) in active.iter().zip(partial.chunks_exact_mut(LANES)) {
            fold_block::<FMA>(&row(w_block, c), &r, p);
        }
    }
    for (o, p) in num.iter_mut().zip(partial.chunks_exact(LANES)) {
        *o = p.iter().sum();
    }
    for f in full..n {
        let model = active
            .iter()
            .fold(held[f], |acc, &c| madd::<FMA>(wt[c * n + f], h[c], acc));
        let r = v[f] / model.max(EPS);
        for (o, &c) in num.iter_mut().zip(active) {
            *o = madd::<FMA>(wt[c * n + f], r, *o);
        }
    }
}

#[inline(always)]
pub(super) fn project_kernel<const FMA: bool>(wt: &[f32], x: &[f32], out: &mut [f32]) {
    const ROWS: usize = 4;
    let n = x.len();
    let full = n - n % LANES;
    let k = out.len();
    let mut c = 0;
    // Four templates at a time share each load of x; 4 x 16 independent partial sums.
    while c + ROWS <= k {
        let mut acc = [[0.0f32; LANES]; ROWS];
        for start in (0..full).step_by(LANES) {
            let xs: &[f32; LANES] = x[start..start + LANES].try_into().expect("inside x");
            for (r, a) in acc.iter_mut().enumerate() {
                let row: &[f32; LANES] = wt[(c + r) * n + start..(c + r) * n + start + LANES]
                    .try_into()
                    .expect("inside W");
                for i in 0..LANES {
                    a[i] = madd::<FMA>(row[i], xs[i], a[i]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let row = &wt[(c + r) * n..(c + r + 1) * n];
            let tail = row[full..]
                .iter()
                .zip(&x[full..])
                .fold(0.0, |s, (w, v)| madd::<FMA>(*w, *v, s));
            out[c + r] = a.iter().sum::<f32>() + tail;
        }
        c += ROWS;
    }
    for (o, row) in out[c..].iter_mut().zip(wt[c * n..].chunks_exact(n)) {
        *o = row
            .iter()
            .zip(x)
            .fold(0.0, |s, (w, v)| madd::<FMA>(*w, *v, s));
    }
}

//! Branch-free `exp` and `ln` in f32 and f64, the one home of the fast math of the hot loops:
//! written without branches so that a loop over them runs in vector registers, accurate to
//! about the rounding of their type on the ranges documented per function.

/// Natural logarithm of a positive, normal, finite f64, branch-free so that loops over it
/// vectorize: `x = 2^e m` with `m` in [sqrt(1/2), sqrt(2)), `ln m = 2 atanh(s)`,
/// `s = (m-1)/(m+1)`, by its odd series to s^17 (|s| <= 0.172, truncation < 1e-15 relative).
#[inline(always)]
pub fn ln_f64(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = e as f64 + if big { 1.0 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let p = 1.0 / 17.0;
    let p = p * s2 + 1.0 / 15.0;
    let p = p * s2 + 1.0 / 13.0;
    let p = p * s2 + 1.0 / 11.0;
    let p = p * s2 + 1.0 / 9.0;
    let p = p * s2 + 1.0 / 7.0;
    let p = p * s2 + 1.0 / 5.0;
    let p = p * s2 + 1.0 / 3.0;
    let p = p * s2 + 1.0;
    e * LN2 + 2.0 * s * p
}

/// `ln x` for a positive, normal, finite f32, branch-free (the scheme of [`ln_f64`] with the
/// series to s^9: absolute error about 1e-7, the f32 rounding).
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = e as f32 + if big { 1.0 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let p = 1.0 / 9.0;
    let p = p * s2 + 1.0 / 7.0;
    let p = p * s2 + 1.0 / 5.0;
    let p = p * s2 + 1.0 / 3.0;
    let p = p * s2 + 1.0;
    e * std::f32::consts::LN_2 + 2.0 * s * p
}

/// `e^x` in f32, branch-free (the scheme of [`exp_f64`] with the series to r^7: relative
/// error a few 1e-7). `x` is clamped to [-87, 88] (NaN to -87).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // max/min (not clamp) so that a NaN becomes -87: `n` below is then always in range.
    #[allow(clippy::manual_clamp)] // clamp would keep a NaN
    let x = x.max(-87.0).min(88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // SAFETY: n is an integer in [-126, 127] (x is clamped and never NaN); the unchecked
    // conversion vectorizes, where `as` (saturating) does not.
    let n: i32 = unsafe { n.to_int_unchecked() };
    p * f32::from_bits(((n + 127) as u32) << 23)
}

/// `e^x` for a finite f64, branch-free so that loops over it vectorize: `x = n ln2 + r`,
/// `|r| <= ln2 / 2` (ln2 in two parts, Cody & Waite), `e^r` by its Taylor series to r^12
/// (truncation < 2e-16 relative), `2^n` built in the exponent bits. `x` is clamped to
/// [-708, 709] (the normal range; NaN to -708).
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // max/min (not clamp) so that a NaN becomes -708: `n` below is then always in range.
    #[allow(clippy::manual_clamp)] // clamp would keep a NaN
    let x = x.max(-708.0).min(709.0);
    let n = (x * std::f64::consts::LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 479_001_600.0; // 1/12!
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // SAFETY: n is an integer in [-1022, 1023] (x is clamped and never NaN); the unchecked
    // conversion vectorizes, where `as` (saturating) does not.
    let n: i64 = unsafe { n.to_int_unchecked() };
    p * f64::from_bits(((n + 1023) as u64) << 52)
}

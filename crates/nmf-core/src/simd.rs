//! CPU instruction sets, and the one way this crate runs code compiled for one.
//!
//! The hot loops (the engine's frame body, the per-frame solver, the fit kernels) are written
//! once and compiled several times: portable, for AVX2 + FMA and for AVX-512. Which copy
//! runs is chosen at run time from an [`Isa`], detected once per process ([`Isa::best`]).
//! An `Isa` can only be obtained from detection ([`Isa::best`], [`Isa::variants`]) or as
//! [`Isa::PORTABLE`], so holding one proves the CPU can run code compiled for it; that is
//! what makes [`dispatch!`] sound.
//!
//! Tests that compare the variants against the portable code iterate [`Isa::variants`].

use std::sync::OnceLock;

/// The instruction-set levels the hot loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The target's baseline (SSE2 on x86_64): no FMA.
    Portable,
    /// AVX2 with FMA (x86_64).
    Avx2,
    /// AVX-512 F, DQ and VL, with AVX2 and FMA (x86_64).
    Avx512,
}

impl Level {
    /// Whether code at this level fuses multiply-adds (`f32::mul_add` is one instruction).
    pub const fn fma(self) -> bool {
        !matches!(self, Level::Portable)
    }

    /// Whether this CPU can run code compiled for this level.
    fn supported(self) -> bool {
        match self {
            Level::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => {
                Level::Avx2.supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512dq")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// An instruction-set level this CPU supports (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isa(Level);

impl Isa {
    /// The portable code, which every CPU runs.
    pub const PORTABLE: Isa = Isa(Level::Portable);

    /// The best level of this CPU, detected on the first call and remembered.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let level = [Level::Avx512, Level::Avx2]
                .into_iter()
                .find(|l| l.supported())
                .unwrap_or(Level::Portable);
            Isa(level)
        })
    }

    /// Every level this CPU supports, portable first (for tests and benchmarks that compare
    /// the variants).
    pub fn variants() -> Vec<Isa> {
        [Level::Portable, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|l| l.supported())
            .map(Isa)
            .collect()
    }

    /// The level.
    pub const fn level(self) -> Level {
        self.0
    }
}

/// Runs a body compiled for the instruction set of an [`Isa`]:
///
/// ```ignore
/// simd::dispatch!(isa, |a: &[f32], out: &mut [f32]| -> f32 { body })
/// ```
///
/// The body is compiled three times, into functions that take the listed arguments (passed
/// from the caller's variables of the same names) with the target features of
/// [`Level::Portable`], [`Level::Avx2`] and [`Level::Avx512`]; the one of `isa` is called.
/// Inside the body the constant `ISA: Level` names the level it is compiled for (use it for a
/// const generic, `kernel::<{ ISA.fma() }>`, or to pick hand-written intrinsics). Helpers
/// the body calls should be `#[inline(always)]` so that they are compiled with the body's
/// features.
macro_rules! dispatch {
    ($isa:expr, |$($arg:ident : $ty:ty),* $(,)?| $(-> $ret:ty)? $body:block) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
        fn avx512($($arg: $ty),*) $(-> $ret)? {
            #[allow(dead_code)]
            const ISA: $crate::simd::Level = $crate::simd::Level::Avx512;
            $body
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn avx2($($arg: $ty),*) $(-> $ret)? {
            #[allow(dead_code)]
            const ISA: $crate::simd::Level = $crate::simd::Level::Avx2;
            $body
        }
        #[inline(always)]
        fn portable($($arg: $ty),*) $(-> $ret)? {
            #[allow(dead_code)]
            const ISA: $crate::simd::Level = $crate::simd::Level::Portable;
            $body
        }
        match $crate::simd::Isa::level($isa) {
            // SAFETY: an `Isa` exists only for levels this CPU supports (module `simd`).
            #[cfg(target_arch = "x86_64")]
            $crate::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            $crate::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
            _ => portable($($arg),*),
        }
    }};
}
pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_start_portable_and_end_with_the_best() {
        let v = Isa::variants();
        assert_eq!(v.first(), Some(&Isa::PORTABLE));
        assert_eq!(v.last(), Some(&Isa::best()));
    }

    #[test]
    fn dispatch_runs_the_body_of_each_level() {
        for isa in Isa::variants() {
            let x = 3.0f32;
            let got = dispatch!(isa, |x: f32| -> (Level, f32) { (ISA, x * 2.0) });
            assert_eq!(got, (isa.level(), 6.0));
        }
    }
}

//! The per-frame solve rule: where a frame's solve starts, how each iteration moves h, how
//! many iterations at most, and when it stops early or holds silent components; with its text
//! form (`flat+me+screen:0.01@0.07`).

/// Where a frame's solve starts. Every start is rescaled to the frame's energy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Start {
    /// The previous frame's h (the solver's first behaviour). Multiplicative
    /// updates leave a component that was near its floor only geometrically, so at an onset
    /// the warm start lags for several frames.
    Warm,
    /// A constant h every frame, the previous frame ignored (as scikit-learn's activation
    /// fit with W given, and as the offline `separate`).
    Flat,
    /// `(1 - a)` times the warm start plus `a` times the flat one, `0 <= a <= 1`.
    Blend(f32),
    /// A blend whose flat weight follows the frame's spectral change:
    /// `a = min(1, g * flux)`, `flux = sum_f |v_t - v_(t-1)| / sum_f (v_t + v_(t-1))` in
    /// [0, 1]: near the warm start on a steady sound, flat at an onset, where a warm start
    /// lags. `g >= 0` is the gain.
    Adaptive(f32),
}

/// How each iteration moves h, from the numerator and denominator of the multiplicative
/// update, `r_k = (W^T (v (W h)^(beta-2)))_k / ((W^T (W h)^(beta-1))_k + sparsity)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// `h_k *= r_k^gamma(beta)`: the minimizer of the majorizing auxiliary function
    /// (Févotte & Idier 2011, eq. 4.1 and Table 2).
    Multiplicative,
    /// Majorization-equalization (Févotte & Idier 2011, sec. 4): instead of the minimizer of
    /// the auxiliary function G(h | h~), the farther point where G equals its value at h~,
    /// which still does not increase the cost (C(h) <= G(h | h~) = G(h~ | h~) = C(h~)) and
    /// takes about twice the step in log scale. For beta = 1 the auxiliary function of
    /// component k is, up to constants, `den_k h_k - num_k h~_k ln(h_k / h~_k)`, so
    /// `h_k = x h~_k` with x the root other than 1 of `x - 1 = r_k ln x`
    /// ([`equalized_factor`]). For beta != 1 this step falls back to the multiplicative one.
    Equalized,
}

/// The per-frame solve rule: a start and a step. See [`SolveRule::default`] for the choice
/// and [`SolveRule::WARM_MU`] for the rule of earlier versions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolveRule {
    /// Where each frame's solve starts.
    pub start: Start,
    /// How each iteration moves h.
    pub step: Step,
    /// Early exit: the solve stops after the first iteration whose relative L1 change of h,
    /// `sum_k |h_k - h'_k| / sum_k h_k`, is at most `tol`; the iteration count is then a
    /// maximum. 0 runs every iteration.
    pub tol: f32,
    /// Screening of silent components (beta = 1 only; 0 turns it off): after
    /// [`SCREEN_AFTER`] iterations, and after every later one, a component whose activation is
    /// below `screen * max(h)` is held where it is for the rest of the frame's solve. Its
    /// share of the model, `W[:, k] h_k`, joins a fixed background (n_bins) once, and the
    /// iterations after that read and update only the components still moving, so their cost
    /// falls with the number of components a frame leaves silent. This is block-coordinate
    /// descent: each iteration is the step of [`Self::step`] on the moving components with the
    /// others fixed, so the cost still does not increase. A held component keeps its value
    /// (it is not zeroed) and is free again in the next frame.
    pub screen: f32,
}

/// Full iterations (every component moving) before [`SolveRule::screen`] may hold any
/// component: from a flat start, two equalization steps already separate the components a
/// frame uses from those it does not by orders of magnitude.
pub const SCREEN_AFTER: usize = 2;

impl SolveRule {
    /// The rule of the first versions: warm start, multiplicative updates.
    pub const WARM_MU: Self = Self {
        start: Start::Warm,
        step: Step::Multiplicative,
        tol: 0.0,
        screen: 0.0,
    };
    /// Flat start every frame, majorization-equalization steps: the default of the first
    /// first versions (with 10 iterations per frame).
    pub const FLAT_ME: Self = Self {
        start: Start::Flat,
        step: Step::Equalized,
        tol: 0.0,
        screen: 0.0,
    };
    /// The default (`flat+me+screen:0.01@0.07`): [`Self::FLAT_ME`] with screening of the
    /// components below 1 % of the frame's largest activation and an early exit at a relative
    /// change of h of 7 %, with [`Self::DEFAULT_ITERATIONS`] iterations at most. On set A of
    /// the bench it meets the goal max(offline - 0.2 dB, FluCoMa's real-time figure),
    /// on all six cases, where [`Self::FLAT_ME`] with 10 iterations misses A_band4; the
    /// screening makes its 16 iterations cost about what 10 of version 1's did
    /// (BENCHMARKS.md, "Screening").
    pub const DEFAULT: Self = Self {
        tol: 0.07,
        screen: 0.01,
        ..Self::FLAT_ME
    };
    /// The iterations per frame of the default rule, a maximum under its early exit (the
    /// plugin's and `separate --realtime`'s default).
    pub const DEFAULT_ITERATIONS: usize = 16;
    /// The most iterations a frame's solve may run: the bound of the plugin's `Iterations`
    /// parameter, of the real-time engine and of `nmfsep separate --realtime --iterations` (the
    /// plugin parameter's range since its first version, so saved projects keep their values).
    pub const MAX_ITERATIONS: usize = 50;

    /// `n` if it is a valid number of iterations per frame (1..=[`Self::MAX_ITERATIONS`]).
    ///
    /// # Errors
    /// A one-line message naming the bound.
    pub fn check_iterations(n: usize) -> Result<usize, String> {
        if (1..=Self::MAX_ITERATIONS).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "the real-time solver runs 1 to {} iterations per frame, not {n}",
                Self::MAX_ITERATIONS
            ))
        }
    }
}

impl std::fmt::Display for SolveRule {
    /// The text form read by [`SolveRule::from_str`](std::str::FromStr): `START+STEP` with
    /// START `warm`, `flat`, `blend:A` or `adapt:G` ([`Start::Adaptive`]) and STEP `mu` (multiplicative) or `me`
    /// (majorization-equalization), then `+screen:S` when [`SolveRule::screen`] is not 0 and
    /// `@TOL` when the early-exit tolerance is not 0, e.g. `flat+me`, `warm+mu` (earlier
    /// versions), `flat+me@0.001` or `flat+me+screen:0.001@0.07`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.start {
            Start::Warm => f.write_str("warm")?,
            Start::Flat => f.write_str("flat")?,
            Start::Blend(a) => write!(f, "blend:{a}")?,
            Start::Adaptive(g) => write!(f, "adapt:{g}")?,
        }
        f.write_str(match self.step {
            Step::Multiplicative => "+mu",
            Step::Equalized => "+me",
        })?;
        if self.screen > 0.0 {
            write!(f, "+screen:{}", self.screen)?;
        }
        if self.tol > 0.0 {
            write!(f, "@{}", self.tol)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for SolveRule {
    type Err = String;

    /// Parses the text form of [`SolveRule`]'s `Display` (`flat+me`, `warm+mu`,
    /// `blend:0.1+me`, ...).
    ///
    /// # Errors
    /// A message naming the accepted forms, for any other text or a blend weight outside 0..=1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("solver {s:?}: expected START+STEP[+screen:S][@TOL], START warm, flat, blend:A (0 <= A <= 1) or adapt:G (G >= 0), STEP mu or me, 0 <= S < 1, TOL >= 0, e.g. flat+me")
        };
        let (rule, tol) = match s.trim().split_once('@') {
            Some((r, t)) => match t.parse::<f32>() {
                Ok(t) if t >= 0.0 && t.is_finite() => (r, t),
                _ => return Err(bad()),
            },
            None => (s.trim(), 0.0),
        };
        let (start, step) = rule.split_once('+').ok_or_else(bad)?;
        let (step, screen) = match step.split_once('+') {
            Some((step, screen)) => match screen.strip_prefix("screen:").map(str::parse::<f32>) {
                Some(Ok(x)) if (0.0..1.0).contains(&x) => (step, x),
                _ => return Err(bad()),
            },
            None => (step, 0.0),
        };
        let start = match start {
            "warm" => Start::Warm,
            "flat" => Start::Flat,
            _ => match start.strip_prefix("blend:").map(str::parse::<f32>) {
                Some(Ok(a)) if (0.0..=1.0).contains(&a) => Start::Blend(a),
                _ => match start.strip_prefix("adapt:").map(str::parse::<f32>) {
                    Some(Ok(g)) if g >= 0.0 && g.is_finite() => Start::Adaptive(g),
                    _ => return Err(bad()),
                },
            },
        };
        let step = match step {
            "mu" => Step::Multiplicative,
            "me" => Step::Equalized,
            _ => return Err(bad()),
        };
        Ok(Self {
            start,
            step,
            tol,
            screen,
        })
    }
}

impl Default for SolveRule {
    /// [`SolveRule::DEFAULT`], to be run with [`SolveRule::DEFAULT_ITERATIONS`] iterations
    /// per frame at most.
    fn default() -> Self {
        Self::DEFAULT
    }
}

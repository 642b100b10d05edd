//! Per-frame activation solve with the templates held fixed: the inner loop of real-time
//! separation. Nothing here allocates after [`FrameSolver::new`].
//!
//! - [`rule`]: the [`SolveRule`] (start, step, iterations, early exit, screening) and its text
//!   form;
//! - [`solver`]: the [`FrameSolver`] and its iterations;
//! - `equalize`: the beta = 1 equalization root (Févotte & Idier 2011);
//! - `kernels`: the blocked model, numerator and projection kernels.

mod equalize;
mod kernels;
pub mod rule;
pub mod solver;

pub use rule::{SolveRule, Start, Step, SCREEN_AFTER};
pub use solver::FrameSolver;

/// Relative floor of a frame's activations: after a solve every entry of h is at least
/// `H_FLOOR_REL * max(h)` (and [`EPS`]), so that a component that fell silent keeps a
/// foothold and the multiplicative updates can bring it back when its sound returns.
pub const H_FLOOR_REL: f32 = 1e-9;

#[cfg(test)]
mod tests;

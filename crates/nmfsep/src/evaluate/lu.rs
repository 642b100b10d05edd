//! Dense LU factorization with partial pivoting (PA = LU, as LAPACK's dgetrf behind numpy's
//! `linalg.solve`; Golub and Van Loan, Matrix Computations, 4th ed., algorithm 3.4.1 in its
//! blocked right-looking form), the trailing updates as matrix products (matrixmultiply).

/// Columns per panel of the blocked factorization.
const PANEL: usize = 64;

/// The matrix has a zero pivot: its columns are linearly dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Singular;

/// A factorization of an n x n matrix.
#[derive(Debug, Clone)]
pub struct Lu {
    n: usize,
    /// L (unit lower, below the diagonal) and U (on and above it), row-major.
    lu: Vec<f64>,
    /// Row k was swapped with row `piv[k]` at step k.
    piv: Vec<usize>,
}

impl Lu {
    /// Factors the row-major n x n matrix `a`.
    ///
    /// # Errors
    /// [`Singular`] on a zero pivot.
    ///
    /// # Panics
    /// If `a.len() != n * n`.
    pub fn factor(mut a: Vec<f64>, n: usize) -> Result<Self, Singular> {
        assert_eq!(a.len(), n * n);
        let mut piv = vec![0; n];
        let mut k0 = 0;
        while k0 < n {
            let kb = PANEL.min(n - k0);
            let end = k0 + kb;
            // Unblocked factorization of the panel (rows k0.., columns k0..end).
            for k in k0..end {
                let (mut p, mut best) = (k, 0.0f64);
                for i in k..n {
                    let v = a[i * n + k].abs();
                    if v > best {
                        best = v;
                        p = i;
                    }
                }
                if best == 0.0 || !best.is_finite() {
                    return Err(Singular);
                }
                piv[k] = p;
                if p != k {
                    let (top, bottom) = a.split_at_mut(p * n);
                    top[k * n..k * n + n].swap_with_slice(&mut bottom[..n]);
                }
                let d = a[k * n + k];
                let (upper, lower) = a.split_at_mut((k + 1) * n);
                let pivot_row = &upper[k * n + k + 1..k * n + end];
                for row in lower.chunks_exact_mut(n) {
                    row[k] /= d;
                    let l = row[k];
                    if l != 0.0 {
                        for (x, u) in row[k + 1..end].iter_mut().zip(pivot_row) {
                            *x -= l * u;
                        }
                    }
                }
            }
            if end < n {
                // U12 = L11^-1 A12.
                for k in k0..end {
                    let (upper, lower) = a.split_at_mut((k + 1) * n);
                    let src = &upper[k * n + end..k * n + n];
                    for i in k + 1..end {
                        let row = &mut lower[(i - k - 1) * n..(i - k) * n];
                        let l = row[k];
                        if l != 0.0 {
                            for (x, u) in row[end..].iter_mut().zip(src) {
                                *x -= l * u;
                            }
                        }
                    }
                }
                // A22 -= L21 U12.
                let m = n - end;
                let base = a.as_mut_ptr();
                // SAFETY: the three blocks are disjoint parts of `a` (rows end.. x columns
                // k0..end, rows k0..end x columns end.., rows end.. x columns end..), all
                // inside its n * n elements, with row stride n.
                unsafe {
                    matrixmultiply::dgemm(
                        m,
                        kb,
                        m,
                        -1.0,
                        base.add(end * n + k0),
                        n as isize,
                        1,
                        base.add(k0 * n + end),
                        n as isize,
                        1,
                        1.0,
                        base.add(end * n + end),
                        n as isize,
                        1,
                    );
                }
            }
            k0 = end;
        }
        Ok(Self { n, lu: a, piv })
    }

    /// Solves A x = b in place.
    ///
    /// # Panics
    /// If `b.len()` differs from n.
    pub fn solve(&self, b: &mut [f64]) {
        let n = self.n;
        assert_eq!(b.len(), n);
        for k in 0..n {
            b.swap(k, self.piv[k]);
        }
        for i in 0..n {
            let row = &self.lu[i * n..i * n + i];
            let s: f64 = row.iter().zip(&b[..i]).map(|(l, x)| l * x).sum();
            b[i] -= s;
        }
        for i in (0..n).rev() {
            let row = &self.lu[i * n + i + 1..i * n + n];
            let s: f64 = row.iter().zip(&b[i + 1..]).map(|(u, x)| u * x).sum();
            b[i] = (b[i] - s) / self.lu[i * n + i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_random_system_beyond_one_panel() {
        let n = 150;
        let mut state = 7u64;
        let mut rnd = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let a: Vec<f64> = (0..n * n).map(|_| rnd()).collect();
        let x: Vec<f64> = (0..n).map(|_| rnd()).collect();
        let b: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|k| a[i * n + k] * x[k]).sum())
            .collect();
        let lu = Lu::factor(a, n).unwrap();
        let mut y = b;
        lu.solve(&mut y);
        let err = x
            .iter()
            .zip(&y)
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
        assert!(err < 1e-9, "error {err}");
    }

    #[test]
    fn zero_matrix_is_singular() {
        assert_eq!(Lu::factor(vec![0.0; 9], 3).unwrap_err(), Singular);
    }
}

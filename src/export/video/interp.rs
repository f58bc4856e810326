//! scipy's `interp1d(x, y, kind='cubic', axis=0)` for gen_video.py: the C² cubic spline with
//! not-a-knot ends through points at the integers `x0, x0+1, …` (what `make_interp_spline(k=3)`
//! builds), for vector values, evaluated in f64.

/// A not-a-knot cubic spline through `(x0 + i, values[i])`, each value a vector of `dim`.
pub struct CubicSpline {
    x0: f64,
    dim: usize,
    y: Vec<f64>,
    /// Second derivatives at the knots.
    m: Vec<f64>,
}

impl CubicSpline {
    /// `values`: `n · dim` (row i = the value at `x0 + i`); needs n ≥ 4, as scipy does.
    pub fn new(x0: f64, values: &[f64], dim: usize) -> Option<Self> {
        let n = values.len() / dim.max(1);
        if n < 4 || dim == 0 || n * dim != values.len() {
            return None;
        }
        let y = values.to_vec();
        // Unit spacing: M[i−1] + 4M[i] + M[i+1] = 6(y[i+1] − 2y[i] + y[i−1]) for 1 ≤ i ≤ n−2;
        // not-a-knot: M0 − 2M1 + M2 = 0 and M[n−3] − 2M[n−2] + M[n−1] = 0, which turn rows 1 and
        // n−2 into 6·M1 = rhs1 and 6·M[n−2] = rhs[n−2].
        let rhs = |i: usize, d: usize| 6.0 * (y[(i + 1) * dim + d] - 2.0 * y[i * dim + d] + y[(i - 1) * dim + d]);
        let mut m = vec![0f64; n * dim];
        for d in 0..dim {
            m[dim + d] = rhs(1, d) / 6.0;
            m[(n - 2) * dim + d] = rhs(n - 2, d) / 6.0;
        }
        if n > 4 {
            // Rows 2..=n−3: tridiagonal (1, 4, 1) with M1 and M[n−2] known (Thomas algorithm).
            let k = n - 4;
            let mut c = vec![0f64; k];
            let mut dvec = vec![0f64; k * dim];
            for (r, i) in (2..n - 2).enumerate() {
                let denom = 4.0 - if r > 0 { c[r - 1] } else { 0.0 };
                c[r] = 1.0 / denom;
                for d in 0..dim {
                    let mut b = rhs(i, d);
                    if i == 2 {
                        b -= m[dim + d];
                    }
                    if i == n - 3 {
                        b -= m[(n - 2) * dim + d];
                    }
                    let prev = if r > 0 { dvec[(r - 1) * dim + d] } else { 0.0 };
                    dvec[r * dim + d] = (b - prev) / denom;
                }
            }
            for r in (0..k).rev() {
                let i = r + 2;
                for d in 0..dim {
                    let next = if r + 1 < k { m[(i + 1) * dim + d] } else { 0.0 };
                    m[i * dim + d] = dvec[r * dim + d] - c[r] * next;
                }
            }
        }
        for d in 0..dim {
            m[d] = 2.0 * m[dim + d] - m[2 * dim + d];
            m[(n - 1) * dim + d] = 2.0 * m[(n - 2) * dim + d] - m[(n - 3) * dim + d];
        }
        Some(Self { x0, dim, y, m })
    }

    /// The spline at `x` (inside the knots; clamped to the last interval at the ends).
    pub fn eval(&self, x: f64) -> Vec<f64> {
        let n = self.y.len() / self.dim;
        let u = x - self.x0;
        let i = (u.floor().max(0.0) as usize).min(n - 2);
        let (a, b) = ((i + 1) as f64 - u, u - i as f64);
        (0..self.dim)
            .map(|d| {
                let (mi, mj) = (self.m[i * self.dim + d], self.m[(i + 1) * self.dim + d]);
                let (yi, yj) = (self.y[i * self.dim + d], self.y[(i + 1) * self.dim + d]);
                mi * a * a * a / 6.0 + mj * b * b * b / 6.0 + (yi - mi / 6.0) * a + (yj - mj / 6.0) * b
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_cubics_exactly_and_passes_through_the_knots() {
        // A cubic is its own not-a-knot spline.
        let f = |x: f64| 0.5 * x * x * x - 2.0 * x * x + x - 3.0;
        let ys: Vec<f64> = (0..7).map(|i| f(i as f64 - 2.0)).collect();
        let s = CubicSpline::new(-2.0, &ys, 1).unwrap();
        for k in 0..40 {
            let x = -2.0 + k as f64 * 0.15;
            assert!((s.eval(x)[0] - f(x)).abs() < 1e-9, "at {x}");
        }
        // Knots of a non-polynomial series, vector values.
        let ys: Vec<f64> = (0..10).flat_map(|i| [(i as f64).sin(), (i as f64 * 0.3).cos()]).collect();
        let s = CubicSpline::new(0.0, &ys, 2).unwrap();
        for i in 0..10 {
            let v = s.eval(i as f64);
            assert!((v[0] - ys[2 * i]).abs() < 1e-12 && (v[1] - ys[2 * i + 1]).abs() < 1e-12);
        }
    }

    #[test]
    fn matches_scipy_interp1d_cubic() {
        // scipy.interpolate.interp1d(np.arange(6), [0, 1, 0, 2, -1, 3], kind='cubic')(x)
        let s = CubicSpline::new(0.0, &[0.0, 1.0, 0.0, 2.0, -1.0, 3.0], 1).unwrap();
        let want = [(0.5, 1.3625), (1.25, 0.554_687_500_000_000_2), (2.5, 1.212_499_999_999_999_5), (4.75, 0.348_437_500_000_000_2)];
        for (x, w) in want {
            assert!((s.eval(x)[0] - w).abs() < 1e-9, "at {x}: {} vs {w}", s.eval(x)[0]);
        }
    }
}

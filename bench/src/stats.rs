//! Medians and spreads of repeated measurements.

use serde::Serialize;

/// Repeated measurements of one figure.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Samples {
    pub values: Vec<f64>,
}

impl Samples {
    pub fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }

    /// The median; the mean of the two middle values for an even count.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The value below which a share `p` (0 to 1) of the samples fall (nearest rank).
    pub fn percentile(&self, p: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = (p * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// Half the range as a fraction of the median: how far one run may stray from the figure.
    pub fn spread(&self) -> f64 {
        (self.max() - self.min()) / 2.0 / self.median().abs()
    }
}

impl FromIterator<f64> for Samples {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        Samples {
            values: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s: Samples = [3.0, 1.0, 2.0].into_iter().collect();
        assert_eq!(s.median(), 2.0);
        let s: Samples = [4.0, 1.0, 3.0, 2.0].into_iter().collect();
        assert_eq!(s.median(), 2.5);
        assert!((s.spread() - 0.6).abs() < 1e-9);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let s: Samples = (1..=100).map(f64::from).collect();
        assert_eq!(s.percentile(0.99), 99.0);
        assert_eq!(s.percentile(0.5), 50.0);
        assert_eq!(s.percentile(1.0), 100.0);
        assert!(Samples::default().percentile(0.99).is_nan());
    }
}

//! The hourly distribution of a capacity series (contract section 7): exact
//! count/min/max/mean and HdrHistogram percentiles within 1%.
//!
//! An HdrHistogram's counts are kilobytes (hundreds of buckets at 2
//! significant digits), while an hour of a metric sampled every few seconds
//! holds tens of samples, so a week of hours was most of a replay's heap and
//! its page faults. A sign's magnitudes are therefore kept as a sorted list
//! while there are at most [`FEW`], and answered with HdrHistogram's own
//! bucket arithmetic, which gives what the histogram would; past that they
//! move into the histogram. A property test checks the two agree.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Values are recorded in thousandths; HdrHistogram keeps 2 significant digits (≤1%).
const SCALE: f64 = 1000.0;
const SIGNIFICANT_DIGITS: u8 = 2;
/// Samples of one sign kept as a list (8 bytes each) before a histogram.
const FEW: usize = 256;
/// Larger magnitudes go to the histogram at once, whose saturation rules
/// then apply (in thousandths: about 9e12 in the metric's unit).
const LARGE: u64 = 1 << 53;

fn histogram() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_DIGITS)
        .expect("2 significant digits are within HdrHistogram's 0..=5")
}

fn record_into(h: &mut Histogram<u64>, x: u64, n: u64) {
    // `record` grows the histogram as needed; saturate only if that fails.
    if h.record_n(x, n).is_err() {
        h.saturating_record_n(x, n);
    }
}

fn histogram_of(few: &[u64]) -> Histogram<u64> {
    let mut h = histogram();
    for &y in few {
        record_into(&mut h, y, 1);
    }
    h
}

/// Recorded magnitudes of one sign, in thousandths.
#[derive(Debug, Clone)]
enum Magnitudes {
    /// At most [`FEW`], sorted, each below [`LARGE`].
    Few(Vec<u64>),
    Many(Box<Histogram<u64>>),
}

impl Default for Magnitudes {
    fn default() -> Self {
        Magnitudes::Few(Vec::new())
    }
}

impl Magnitudes {
    fn record_n(&mut self, x: u64, n: u64) {
        if let Magnitudes::Few(few) = self {
            let fits = usize::try_from(n).is_ok_and(|n| few.len().saturating_add(n) <= FEW);
            if fits && x < LARGE {
                let at = few.partition_point(|&y| y <= x);
                if n == 1 {
                    // Every sample: `splice`'s machinery cost more than the move.
                    few.insert(at, x);
                } else {
                    few.splice(at..at, std::iter::repeat_n(x, n as usize));
                }
                return;
            }
            *self = Magnitudes::Many(Box::new(histogram_of(few)));
        }
        if let Magnitudes::Many(h) = self {
            record_into(h, x, n);
        }
    }

    fn len(&self) -> u64 {
        match self {
            Magnitudes::Few(few) => few.len() as u64,
            Magnitudes::Many(h) => h.len(),
        }
    }

    /// What `Histogram::value_at_quantile` answers for these magnitudes.
    fn value_at_quantile(&self, q: f64) -> u64 {
        let few = match self {
            Magnitudes::Many(h) => return h.value_at_quantile(q),
            Magnitudes::Few(few) => few,
        };
        // As the histogram caps it (`min` would also turn NaN into 1).
        let q = if q > 1.0 { 1.0 } else { q };
        let rank = ((q * few.len() as f64).ceil() as u64).max(1);
        // The histogram answers 0 past its last count (an empty one, or a
        // rank rounded above the total).
        let Some(&x) = usize::try_from(rank - 1).ok().and_then(|i| few.get(i)) else {
            return 0;
        };
        let buckets = template();
        if q == 0.0 {
            buckets.lowest_equivalent(x)
        } else {
            buckets.highest_equivalent(x)
        }
    }

    /// The recorded (value, count) pairs, as the histogram iterates them.
    fn recorded(&self) -> Vec<(u64, u64)> {
        let owned;
        let h = match self {
            Magnitudes::Many(h) => h,
            Magnitudes::Few(few) => {
                owned = histogram_of(few);
                &owned
            }
        };
        (h.iter_recorded())
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    fn rebuilt(pairs: &[(u64, u64)]) -> Self {
        let mut m = Magnitudes::default();
        for &(v, n) in pairs {
            m.record_n(v, n);
        }
        m
    }
}

/// An empty histogram: bucket boundaries depend only on the significant
/// digits, not on the recorded range.
fn template() -> &'static Histogram<u64> {
    static TEMPLATE: std::sync::LazyLock<Histogram<u64>> = std::sync::LazyLock::new(histogram);
    &TEMPLATE
}

/// A distribution: exact count/min/max/sum, approximate quantiles. Serialised
/// as its recorded (value, count) pairs, which rebuild the same histogram buckets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "DistState", from = "DistState")]
pub struct Dist {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
    pos: Magnitudes,
    neg: Magnitudes,
}

impl Default for Dist {
    fn default() -> Self {
        Dist {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            pos: Magnitudes::default(),
            neg: Magnitudes::default(),
        }
    }
}

impl Dist {
    /// Records one sample.
    pub fn record(&mut self, v: f64) {
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        let m = if v < 0.0 {
            &mut self.neg
        } else {
            &mut self.pos
        };
        m.record_n((v.abs() * SCALE).round() as u64, 1);
    }

    /// Nearest-rank quantile `q` (within HdrHistogram's 1%), clamped to [min, max].
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let neg_n = self.neg.len();
        let v = if rank <= neg_n {
            // Negatives ascend as their magnitudes descend.
            let q = (neg_n - rank + 1) as f64 / neg_n as f64;
            -(self.neg.value_at_quantile(q) as f64) / SCALE
        } else {
            let pos_n = self.count - neg_n;
            let q = (rank - neg_n) as f64 / pos_n.max(1) as f64;
            self.pos.value_at_quantile(q) as f64 / SCALE
        };
        v.clamp(self.min, self.max)
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Smallest sample.
    pub fn min(&self) -> f64 {
        self.min
    }
    /// Largest sample.
    pub fn max(&self) -> f64 {
        self.max
    }
    /// Arithmetic mean.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// The serialised form of a [`Dist`].
#[derive(Serialize, Deserialize)]
struct DistState {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
    /// (value, count) recorded in the positive and negative histograms.
    pos: Vec<(u64, u64)>,
    neg: Vec<(u64, u64)>,
}

impl From<Dist> for DistState {
    fn from(d: Dist) -> Self {
        DistState {
            count: d.count,
            min: d.min,
            max: d.max,
            sum: d.sum,
            pos: d.pos.recorded(),
            neg: d.neg.recorded(),
        }
    }
}

impl From<DistState> for Dist {
    fn from(s: DistState) -> Self {
        Dist {
            count: s.count,
            min: s.min,
            max: s.max,
            sum: s.sum,
            pos: Magnitudes::rebuilt(&s.pos),
            neg: Magnitudes::rebuilt(&s.neg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The distribution as it was before the list: histograms from the first sample.
    fn histograms_only(samples: &[f64]) -> Dist {
        let mut d = Dist {
            pos: Magnitudes::Many(Box::new(histogram())),
            neg: Magnitudes::Many(Box::new(histogram())),
            ..Dist::default()
        };
        for &v in samples {
            d.record(v);
        }
        d
    }

    fn recorded(samples: &[f64]) -> Dist {
        let mut d = Dist::default();
        for &v in samples {
            d.record(v);
        }
        d
    }

    /// Magnitudes the list keeps: every scale below [`LARGE`], the edges of
    /// HdrHistogram's buckets among them.
    fn kept() -> impl Strategy<Value = f64> {
        prop_oneof![
            6 => -1000.0..1000.0f64,
            3 => (0i32..53, any::<bool>()).prop_map(|(e, neg)| {
                let v = 2f64.powi(e) / SCALE;
                if neg { -v } else { v }
            }),
            3 => (0i32..13, 0u64..1000).prop_map(|(e, m)| m as f64 * 10f64.powi(e - 3)),
            1 => Just(0.0),
        ]
    }

    /// Kept magnitudes, and now and then one past where the list hands over
    /// to the histogram.
    fn samples() -> impl Strategy<Value = Vec<f64>> {
        let huge = prop_oneof![Just(1e300), (53i32..64).prop_map(|e| 2f64.powi(e) / SCALE)];
        prop_oneof![
            3 => prop::collection::vec(kept(), 0..300),
            1 => prop::collection::vec(prop_oneof![20 => kept(), 1 => huge], 0..600),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn the_list_answers_as_the_histograms_do(
            samples in samples(),
            qs in prop::collection::vec(prop_oneof![0.0..=1.0f64, Just(f64::NAN), Just(-0.5), Just(1.5)], 1..8),
        ) {
            let few = recorded(&samples);
            let many = histograms_only(&samples);
            for q in qs.iter().copied().chain([0.0, 0.5, 0.95, 0.99, 1.0]) {
                prop_assert_eq!(few.quantile(q).to_bits(), many.quantile(q).to_bits(), "q {}", q);
            }
            // The list answers any `q` as the histogram does, NaN and out of range too.
            for q in qs.iter().copied().chain([0.0, 1.0]) {
                prop_assert_eq!(few.pos.value_at_quantile(q), many.pos.value_at_quantile(q), "q {}", q);
            }
            let (a, b) = (DistState::from(few.clone()), DistState::from(many));
            prop_assert_eq!((&a.pos, &a.neg), (&b.pos, &b.neg));
            // The serialised form rebuilds the same answers.
            let again = Dist::from(a);
            for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
                prop_assert_eq!(again.quantile(q).to_bits(), few.quantile(q).to_bits());
            }
        }
    }

    #[test]
    fn negative_values_have_percentiles_too() {
        let d = recorded(&[-30.0, -20.0, -10.0, 10.0]);
        assert_eq!(d.quantile(0.25), -30.0);
        assert!((d.quantile(0.5) + 20.0).abs() <= 0.2);
        assert!((d.quantile(1.0) - 10.0).abs() <= 0.1);
    }

    #[test]
    fn many_samples_move_into_the_histogram() {
        let d = recorded(&(0..FEW as u32 + 1).map(f64::from).collect::<Vec<_>>());
        assert!(matches!(d.pos, Magnitudes::Many(_)));
        assert!(matches!(d.neg, Magnitudes::Few(_)));
        assert!(matches!(recorded(&[1e300]).pos, Magnitudes::Many(_)));
    }
}

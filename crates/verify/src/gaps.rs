//! Outages per path, computed as results stream in.
//!
//! Agents report probes as they complete, so a probe that timed out arrives after later
//! probes that passed. Each page of results says up to when it is complete (the watermark);
//! the tracker holds records back until the watermark passes them, then replays them in the
//! order they were sent. A gap starts at the first lost probe and ends at the next probe that
//! passed; both are send times, so a gap is measured to within one interval.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One outage of one path. Times are Unix microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub start_us: i64,
    pub end_us: i64,
    pub lost: u64,
    /// The first failure's reason.
    pub error: String,
    /// Still down when the run ended (`end_us` is then the end of the run).
    pub open: bool,
}

impl Gap {
    pub fn duration_s(&self) -> f64 {
        (self.end_us - self.start_us) as f64 / 1e6
    }
}

/// Counters and outages of one path so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathStats {
    pub probes: u64,
    pub lost: u64,
    pub gaps: Vec<Gap>,
    pub rtt_max_us: u32,
    pub rtt_sum_us: u64,
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
    /// The current outage, not yet closed.
    pub open: Option<Gap>,
    /// When each lost probe was sent (Unix µs), to tell which node was being switched then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_at: Vec<i64>,
}

impl PathStats {
    fn apply(&mut self, t: i64, rtt: Option<u32>, error: Option<&str>) {
        self.probes += 1;
        self.first_us.get_or_insert(t);
        self.last_us = Some(t);
        match error {
            Some(error) => {
                self.lost += 1;
                self.lost_at.push(t);
                match &mut self.open {
                    Some(gap) => gap.lost += 1,
                    None => {
                        self.open = Some(Gap {
                            start_us: t,
                            end_us: t,
                            lost: 1,
                            error: error.to_string(),
                            open: true,
                        })
                    }
                }
            }
            None => {
                if let Some(mut gap) = self.open.take() {
                    gap.end_us = t;
                    gap.open = false;
                    self.gaps.push(gap);
                }
                let rtt = rtt.unwrap_or(0);
                self.rtt_max_us = self.rtt_max_us.max(rtt);
                self.rtt_sum_us += u64::from(rtt);
            }
        }
    }

    /// Gaps, the open one (ended at `end_us`) included.
    pub fn all_gaps(&self, end_us: i64) -> Vec<Gap> {
        let mut gaps = self.gaps.clone();
        if let Some(open) = &self.open {
            let mut gap = open.clone();
            gap.end_us = end_us.max(gap.start_us);
            gaps.push(gap);
        }
        gaps
    }

    pub fn is_down(&self) -> bool {
        self.open.is_some()
    }
}

/// One path's tracker: reorders by send time up to the watermark, then updates [`PathStats`].
#[derive(Debug, Default)]
pub struct Tracker {
    pending: BTreeMap<(i64, u64), (Option<u32>, Option<String>)>,
    counter: u64,
    pub stats: PathStats,
}

impl Tracker {
    /// A probe sent at `t` (Unix µs): passed with `rtt`, or failed with `error`.
    pub fn add(&mut self, t: i64, rtt: Option<u32>, error: Option<String>) {
        self.counter += 1;
        self.pending.insert((t, self.counter), (rtt, error));
    }

    /// Every probe sent before `watermark` has been added: apply them in send order.
    pub fn advance(&mut self, watermark: i64) {
        let later = self.pending.split_off(&(watermark, 0));
        let ready = std::mem::replace(&mut self.pending, later);
        for ((t, _), (rtt, error)) in ready {
            self.stats.apply(t, rtt, error.as_deref());
        }
    }

    /// Applies everything still held back.
    pub fn flush(&mut self) {
        self.advance(i64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_run_of_losses_is_one_gap_from_first_loss_to_next_success() {
        let mut tr = Tracker::default();
        // 200 ms interval; probes 5..=19 lost (3 s).
        for i in 0..30i64 {
            let err = (5..20)
                .contains(&i)
                .then(|| "timed out after 1s".to_string());
            tr.add(i * 200_000, err.is_none().then_some(100), err);
        }
        tr.flush();
        assert_eq!(tr.stats.probes, 30);
        assert_eq!(tr.stats.lost, 15);
        assert_eq!(tr.stats.gaps.len(), 1);
        let gap = &tr.stats.gaps[0];
        assert_eq!(
            (gap.start_us, gap.end_us, gap.lost),
            (1_000_000, 4_000_000, 15)
        );
        assert!((gap.duration_s() - 3.0).abs() < 1e-9);
        assert!(!gap.open);
    }

    #[test]
    fn records_are_held_until_the_watermark() {
        let mut tr = Tracker::default();
        tr.add(0, Some(1), None);
        tr.add(400_000, Some(1), None);
        // The probe sent at 200 ms times out and arrives last.
        tr.advance(200_000);
        assert_eq!(tr.stats.probes, 1);
        tr.add(200_000, None, Some("timed out".into()));
        tr.advance(600_000);
        assert_eq!(tr.stats.gaps.len(), 1);
        assert_eq!(tr.stats.gaps[0].start_us, 200_000);
        assert_eq!(tr.stats.gaps[0].end_us, 400_000);
    }

    #[test]
    fn an_outage_at_the_end_is_open() {
        let mut tr = Tracker::default();
        tr.add(0, Some(1), None);
        tr.add(200_000, None, Some("refused".into()));
        tr.flush();
        let gaps = tr.stats.all_gaps(1_000_000);
        assert_eq!(gaps.len(), 1);
        assert!(gaps[0].open);
        assert_eq!(gaps[0].end_us, 1_000_000);
        assert!(tr.stats.is_down());
    }

    proptest! {
        /// Arrival order does not matter as long as the watermark is honoured.
        #[test]
        fn order_of_arrival_does_not_change_the_gaps(
            outcomes in proptest::collection::vec(any::<bool>(), 1..200),
            seed in any::<u64>(),
        ) {
            let records: Vec<(i64, bool)> = outcomes.iter().enumerate().map(|(i, ok)| (i as i64 * 200_000, *ok)).collect();
            let mut sorted = Tracker::default();
            for (t, ok) in &records {
                sorted.add(*t, ok.then_some(5), (!ok).then(|| "x".to_string()));
            }
            sorted.flush();
            // Shuffle deterministically, then feed in two batches with a watermark between.
            let mut shuffled = records.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let half = records.len() as i64 / 2 * 200_000;
            let mut tr = Tracker::default();
            for (t, ok) in shuffled.iter().filter(|(t, _)| *t < half) {
                tr.add(*t, ok.then_some(5), (!ok).then(|| "x".to_string()));
            }
            tr.advance(half);
            for (t, ok) in shuffled.iter().filter(|(t, _)| *t >= half) {
                tr.add(*t, ok.then_some(5), (!ok).then(|| "x".to_string()));
            }
            tr.flush();
            prop_assert_eq!(&tr.stats, &sorted.stats);
            let lost: u64 = sorted.stats.all_gaps(i64::MAX).iter().map(|g| g.lost).sum();
            prop_assert_eq!(lost, sorted.stats.lost);
        }
    }
}

//! Stable verdicts: a verdict is shown once its rule has held in
//! [`APPEAR_AFTER`] consecutive diagnoses, and is shown until the rule has
//! failed in [`CLEAR_AFTER`] consecutive ones. A rule that comes and goes
//! with the phase at which samples meet a burst is never shown, and a shown
//! verdict does not blink out for one window that happened to miss it (each
//! appearance is a JMX notification).

use super::verdicts::{rule_ids, Diagnosis, Verdict};

/// Consecutive diagnoses in which a rule must hold before its verdict shows.
pub const APPEAR_AFTER: u32 = 3;
/// Consecutive diagnoses in which a shown verdict's rule must fail before
/// it is cleared.
pub const CLEAR_AFTER: u32 = 3;

/// One rule's recent outcomes.
#[derive(Debug, Clone, Default)]
struct RuleState {
    held: u32,
    failed: u32,
    /// The verdict as last found, while it is shown.
    shown: Option<Verdict>,
}

/// What the rules found in the diagnoses so far, rule by rule.
#[derive(Debug, Clone)]
pub struct Stability {
    rules: Vec<RuleState>,
}

impl Default for Stability {
    fn default() -> Stability {
        Stability {
            rules: rule_ids().map(|_| RuleState::default()).collect(),
        }
    }
}

impl Stability {
    /// Takes the verdicts the rules found in `d` and puts the stable ones
    /// in their place, in the rules' order; the rules that hold but are not
    /// shown yet go to `d.pending`. A shown verdict whose rule failed this
    /// time keeps the evidence it last had.
    pub fn apply(&mut self, d: &mut Diagnosis) {
        let mut found = std::mem::take(&mut d.verdicts);
        d.pending.clear();
        for (id, state) in rule_ids().zip(self.rules.iter_mut()) {
            match found.iter().position(|v| v.id == id) {
                Some(i) => {
                    let v = found.swap_remove(i);
                    (state.held, state.failed) = (state.held.saturating_add(1), 0);
                    if state.shown.is_some() || state.held >= APPEAR_AFTER {
                        state.shown = Some(v);
                    } else {
                        d.pending.push(id);
                    }
                }
                None => {
                    (state.held, state.failed) = (0, state.failed.saturating_add(1));
                    if state.failed >= CLEAR_AFTER {
                        state.shown = None;
                    }
                }
            }
            if let Some(v) = &state.shown {
                d.verdicts.push(v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnosis(ids: &[&'static str]) -> Diagnosis {
        Diagnosis {
            window_seconds: 60,
            samples: 30,
            growth: Vec::new(),
            drivers: Vec::new(),
            seconds_to_limit: None,
            verdicts: ids
                .iter()
                .map(|id| Verdict {
                    id,
                    title: format!("{id} title"),
                    evidence: format!("{id} evidence"),
                    advice: Vec::new(),
                })
                .collect(),
            pending: Vec::new(),
            not_judged: Vec::new(),
            info: Vec::new(),
        }
    }

    /// The ids shown after each diagnosis of `sequence`.
    fn shown(sequence: &[&[&'static str]]) -> Vec<Vec<&'static str>> {
        let mut s = Stability::default();
        sequence
            .iter()
            .map(|ids| {
                let mut d = diagnosis(ids);
                s.apply(&mut d);
                d.verdicts.iter().map(|v| v.id).collect()
            })
            .collect()
    }

    #[test]
    fn a_verdict_shows_after_three_diagnoses_and_clears_after_three_misses() {
        let f = "allocator_fragmentation";
        let got = shown(&[&[f], &[f], &[f], &[], &[f], &[], &[], &[], &[f]]);
        let none: Vec<&str> = Vec::new();
        assert_eq!(
            got,
            vec![
                none.clone(),
                none.clone(),
                vec![f],
                vec![f], // one miss: still shown
                vec![f],
                vec![f],
                vec![f],
                none.clone(), // third miss in a row
                none,         // holding once is not enough to show again
            ]
        );
    }

    #[test]
    fn a_rule_that_comes_and_goes_is_never_shown() {
        let d = "direct_buffer_growth";
        let got = shown(&[&[d], &[], &[d], &[d], &[], &[d], &[], &[d], &[d], &[]]);
        assert!(got.iter().all(|ids| ids.is_empty()), "{got:?}");
    }

    #[test]
    fn pending_rules_are_listed_and_verdicts_keep_the_rules_order() {
        let (h, f) = ("heap_growth", "allocator_fragmentation");
        let mut s = Stability::default();
        for _ in 0..3 {
            let mut d = diagnosis(&[h]);
            s.apply(&mut d);
        }
        let mut d = diagnosis(&[h, f]);
        s.apply(&mut d);
        assert_eq!(d.verdicts.iter().map(|v| v.id).collect::<Vec<_>>(), vec![h]);
        assert_eq!(d.pending, vec![f]);
        // A shown verdict whose rule fails keeps its last evidence.
        let mut d = diagnosis(&[]);
        s.apply(&mut d);
        assert_eq!(d.verdicts[0].evidence, "heap_growth evidence");
        assert!(d.pending.is_empty());
    }
}

//! The period head: a learned scorer of the candidate periods the layer sieve weighs each round
//! (see [`super::patterns`]). The rules of the sieve find most layers; the head, trained on the
//! synthetic truth, adds the candidates they pass over that look like a layer's period (a quiet
//! layer nested in a louder one's band, say) and refuses those they accept that look like a
//! multiple or divisor of one.
//!
//! It is an ensemble of gradient-boosted regression trees whose leaves sum to a logit, trained
//! and written by `models/strata_models/period_head.py` (scikit-learn's
//! `HistGradientBoostingClassifier`) as JSON and listed, with its sha256, in the model folder's
//! manifest.
//!
//! ```
//! use strata::layers::period_head::PeriodHead;
//! use strata::layers::patterns::CANDIDATE_FEATURES;
//!
//! // One tree: feature 2 at or under 1.5 goes left (logit +2), over it right (logit -2).
//! let json = r#"{"baseline": 0.0, "trees": [{"feature": [2, 0, 0], "threshold": [1.5, 0.0, 0.0],
//!     "left": [1, 0, 0], "right": [2, 0, 0], "leaf": [false, true, true], "value": [0.0, 2.0, -2.0]}]}"#;
//! let head = PeriodHead::from_json(json).unwrap();
//! let mut x = [0.0; CANDIDATE_FEATURES];
//! x[2] = 1.0;
//! assert!((head.score(&x) - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-12);
//! x[2] = 3.0;
//! assert!(head.score(&x) < 0.5);
//! // A tree whose child points back up would never end: it is refused, with what is wrong.
//! let cycle = json.replace(r#""left": [1, 0, 0]"#, r#""left": [0, 0, 0]"#);
//! assert!(PeriodHead::from_json(&cycle).unwrap_err().to_string().contains("node 0"));
//! ```

use serde::Deserialize;

use super::patterns::CANDIDATE_FEATURES;

/// The trees, as `models/` writes them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PeriodHead {
    /// The logit before any tree: the training set's log odds.
    baseline: f64,
    trees: Vec<Tree>,
}

/// One regression tree, its nodes in arrays (the root first). A node that is not a leaf sends a
/// candidate whose `feature` is at most `threshold` to `left`, any other to `right`; a leaf adds
/// its `value` to the logit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Tree {
    feature: Vec<usize>,
    threshold: Vec<f64>,
    left: Vec<usize>,
    right: Vec<usize>,
    leaf: Vec<bool>,
    value: Vec<f64>,
}

/// Why a period head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PeriodHeadError {
    #[error("not a period head: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the period head's tree {tree} has {got} {what}, expected {expected}")]
    Shape { tree: usize, what: &'static str, got: usize, expected: usize },
    #[error("the period head's tree {tree}, node {node}: {why}")]
    Node { tree: usize, node: usize, why: String },
}

impl PeriodHead {
    /// Reads and checks a head written by `models/strata_models/period_head.py`: every array of
    /// a tree as long as its nodes, every split on a feature there is, and every child after its
    /// parent (so a walk from the root always ends at a leaf).
    pub fn from_json(text: &str) -> Result<Self, PeriodHeadError> {
        let head: PeriodHead = serde_json::from_str(text)?;
        for (t, tree) in head.trees.iter().enumerate() {
            let n = tree.leaf.len();
            let shape = |what, got| if got == n && n > 0 { Ok(()) } else { Err(PeriodHeadError::Shape { tree: t, what, got, expected: n.max(1) }) };
            shape("leaf flags", n)?;
            shape("features", tree.feature.len())?;
            shape("thresholds", tree.threshold.len())?;
            shape("left children", tree.left.len())?;
            shape("right children", tree.right.len())?;
            shape("values", tree.value.len())?;
            for node in (0..n).filter(|&i| !tree.leaf[i]) {
                let bad = |why: String| Err(PeriodHeadError::Node { tree: t, node, why });
                if tree.feature[node] >= CANDIDATE_FEATURES {
                    return bad(format!("splits on feature {}, of {CANDIDATE_FEATURES}", tree.feature[node]));
                }
                for child in [tree.left[node], tree.right[node]] {
                    if child <= node || child >= n {
                        return bad(format!("child {child} is not a later node of {n}"));
                    }
                }
            }
        }
        Ok(head)
    }

    /// The probability (0..1) that a candidate with these features is a layer's period.
    pub fn score(&self, features: &[f64; CANDIDATE_FEATURES]) -> f64 {
        let logit = self.baseline + self.trees.iter().map(|t| t.value_of(features)).sum::<f64>();
        1.0 / (1.0 + (-logit).exp())
    }
}

impl Tree {
    /// The value of the leaf `features` reach.
    fn value_of(&self, features: &[f64; CANDIDATE_FEATURES]) -> f64 {
        let mut node = 0;
        while !self.leaf[node] {
            node = if features[self.feature[node]] <= self.threshold[node] { self.left[node] } else { self.right[node] };
        }
        self.value[node]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A one-split tree's JSON: `feature` at most `threshold` gives `below`, else `above`.
    fn stump(feature: usize, threshold: f64, below: f64, above: f64) -> String {
        format!(
            r#"{{"feature": [{feature}, 0, 0], "threshold": [{threshold:?}, 0.0, 0.0], "left": [1, 0, 0], "right": [2, 0, 0],
                 "leaf": [false, true, true], "value": [0.0, {below:?}, {above:?}]}}"#
        )
    }

    proptest! {
        /// Any text is a head or an error, never a panic; any head read scores 0..1 anywhere.
        #[test]
        fn any_text_reads_or_is_refused(text in "\\PC*", x in prop::array::uniform19(-1e6..1e6f64)) {
            if let Ok(head) = PeriodHead::from_json(&text) {
                prop_assert!((0.0..=1.0).contains(&head.score(&x)));
            }
        }

        /// Heads of the right shape with any splits and values score a probability, whatever the
        /// features.
        #[test]
        fn any_trees_score_a_probability(
            trees in prop::collection::vec((0..CANDIDATE_FEATURES, -1e3..1e3f64, -1e3..1e3f64, -1e3..1e3f64), 0..5),
            baseline in -1e3..1e3f64,
            x in prop::array::uniform19(-1e9..1e9f64),
        ) {
            let trees: Vec<String> = trees.iter().map(|&(f, t, a, b)| stump(f, t, a, b)).collect();
            let json = format!(r#"{{"baseline": {baseline:?}, "trees": [{}]}}"#, trees.join(","));
            let head = PeriodHead::from_json(&json).expect("a head of the right shape");
            let p = head.score(&x);
            prop_assert!((0.0..=1.0).contains(&p), "{}", p);
        }
    }

    /// The committed head, with the rows `period_head.py` checked it on: scikit-learn's
    /// probabilities for them, which the trees read here must give too.
    #[derive(Deserialize)]
    struct Committed {
        check: Vec<Check>,
    }

    #[derive(Deserialize)]
    struct Check {
        features: Vec<f64>,
        probability: f64,
    }

    #[test]
    fn the_committed_head_gives_scikit_learns_probabilities() {
        let text = include_str!("../../../models/heads/period_head.json");
        let head = PeriodHead::from_json(text).expect("the committed head");
        let committed: Committed = serde_json::from_str(text).expect("the committed head's check rows");
        assert!(committed.check.len() >= 8);
        for row in &committed.check {
            let x: [f64; CANDIDATE_FEATURES] = row.features.as_slice().try_into().expect("a row of every feature");
            let p = head.score(&x);
            assert!((p - row.probability).abs() < 1e-9, "{p} against {}", row.probability);
        }
    }

    #[test]
    fn a_tree_that_does_not_hold_together_is_refused() {
        let head = |tree: String| PeriodHead::from_json(&format!(r#"{{"baseline": 0.0, "trees": [{tree}]}}"#));
        assert!(head(stump(0, 0.5, 1.0, -1.0)).is_ok());
        let no_such_feature = head(stump(CANDIDATE_FEATURES, 0.5, 1.0, -1.0)).expect_err("feature out of range");
        assert!(no_such_feature.to_string().contains("feature"), "{no_such_feature}");
        let short = head(stump(0, 0.5, 1.0, -1.0).replace("[0.0, 1.0, -1.0]", "[0.0, 1.0]")).expect_err("a value missing");
        assert!(short.to_string().contains("values"), "{short}");
        let outside = head(stump(0, 0.5, 1.0, -1.0).replace(r#""right": [2, 0, 0]"#, r#""right": [3, 0, 0]"#)).expect_err("a child past the end");
        assert!(outside.to_string().contains("child 3"), "{outside}");
    }
}

//! The learned heads: small ensembles of gradient-boosted regression trees whose leaves sum to a
//! logit, trained and written by `models/` (scikit-learn's `HistGradientBoostingClassifier`) as
//! JSON and listed, with their sha256, in the model folder's manifest.
//!
//! - The period head ([`PeriodHead`], `models/strata_models/period_head.py`) scores the candidate
//!   periods the layer sieve weighs each round (see [`super::patterns`]). The rules of the sieve
//!   find most layers; the head, trained on the synthetic truth, adds the candidates they pass
//!   over that look like a layer's period (a quiet layer nested in a louder one's band, say) and
//!   refuses those they accept that look like a multiple or divisor of one.
//! - The change head ([`ChangeHead`], `models/tools/change_head.py`) scores each moment of the
//!   change detector's novelty as a change's edge (see [`super::novelty`]): the detector's edges
//!   move to where it is surest, and it adds the edges it is confident of that the rules missed.
//! - The attribution head ([`AttributionHead`], `models/tools/attribution_head.py`) scores
//!   each layer a change could go to as the one that changed (see [`super::attribution`]).
//!
//! ```
//! use strata::layers::heads::PeriodHead;
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

use super::attribution::ATTRIBUTION_FEATURES;
use super::edges::CHANGE_FEATURES;
use super::patterns::CANDIDATE_FEATURES;

/// The period head: a candidate period's [`CANDIDATE_FEATURES`] numbers to the probability that
/// it is a layer's period.
pub type PeriodHead = Trees<CANDIDATE_FEATURES>;
/// The change head: a moment's [`CHANGE_FEATURES`] numbers to the probability that a change's
/// edge lies there.
pub type ChangeHead = Trees<CHANGE_FEATURES>;
/// The attribution head: a layer's [`ATTRIBUTION_FEATURES`] numbers for a change to the
/// probability that it is the layer that changed.
pub type AttributionHead = Trees<ATTRIBUTION_FEATURES>;

/// The trees of a head reading `N` features, read from what `models/` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Trees<const N: usize> {
    /// The logit before any tree: the training set's log odds.
    baseline: f64,
    /// Each tree's nodes, the root first.
    trees: Vec<Vec<Node>>,
}

/// A head's file: each regression tree's nodes in arrays (the root first). A node that is not a
/// leaf sends features whose `feature` is at most `threshold` to `left`, any other to `right`;
/// a leaf adds its `value` to the logit.
#[derive(Deserialize)]
struct TreesFile {
    baseline: f64,
    trees: Vec<TreeArrays>,
}

#[derive(Deserialize)]
struct TreeArrays {
    feature: Vec<usize>,
    threshold: Vec<f64>,
    left: Vec<usize>,
    right: Vec<usize>,
    leaf: Vec<bool>,
    value: Vec<f64>,
}

/// One node, its fields side by side: a walk from the root reads one node per step (the change
/// head walks 300 trees at every moment, ten moments a second).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    threshold: f64,
    value: f64,
    feature: usize,
    left: usize,
    right: usize,
    leaf: bool,
}

/// Why a head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("not a head's trees: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the head's tree {tree} has {got} {what}, expected {expected}")]
    Shape { tree: usize, what: &'static str, got: usize, expected: usize },
    #[error("the head's tree {tree}, node {node}: {why}")]
    Node { tree: usize, node: usize, why: String },
}

impl<const N: usize> Trees<N> {
    /// Reads and checks a head written by `models/`: every array of a tree as long as its nodes,
    /// every split on one of the `N` features, and every child after its parent (so a walk from
    /// the root always ends at a leaf).
    pub fn from_json(text: &str) -> Result<Self, HeadError> {
        let head: TreesFile = serde_json::from_str(text)?;
        for (t, tree) in head.trees.iter().enumerate() {
            let n = tree.leaf.len();
            let shape = |what, got| if got == n && n > 0 { Ok(()) } else { Err(HeadError::Shape { tree: t, what, got, expected: n.max(1) }) };
            shape("leaf flags", n)?;
            shape("features", tree.feature.len())?;
            shape("thresholds", tree.threshold.len())?;
            shape("left children", tree.left.len())?;
            shape("right children", tree.right.len())?;
            shape("values", tree.value.len())?;
            for node in (0..n).filter(|&i| !tree.leaf[i]) {
                let bad = |why: String| Err(HeadError::Node { tree: t, node, why });
                if tree.feature[node] >= N {
                    return bad(format!("splits on feature {}, of {N}", tree.feature[node]));
                }
                for child in [tree.left[node], tree.right[node]] {
                    if child <= node || child >= n {
                        return bad(format!("child {child} is not a later node of {n}"));
                    }
                }
            }
        }
        let trees = head
            .trees
            .iter()
            .map(|t| {
                (0..t.leaf.len())
                    .map(|i| Node { threshold: t.threshold[i], value: t.value[i], feature: t.feature[i], left: t.left[i], right: t.right[i], leaf: t.leaf[i] })
                    .collect()
            })
            .collect();
        Ok(Self { baseline: head.baseline, trees })
    }

    /// The probability (0..1) the head gives to these features.
    pub fn score(&self, features: &[f64; N]) -> f64 {
        let logit = self.baseline + self.trees.iter().map(|t| value_of(t, features)).sum::<f64>();
        1.0 / (1.0 + (-logit).exp())
    }
}

/// The value of the leaf of `tree` that `features` reach.
fn value_of(tree: &[Node], features: &[f64]) -> f64 {
    let mut node = &tree[0];
    while !node.leaf {
        node = &tree[if features[node.feature] <= node.threshold { node.left } else { node.right }];
    }
    node.value
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

    /// A committed head, with the rows `models/` checked it on: scikit-learn's probabilities for
    /// them, which the trees read here must give too.
    #[derive(Deserialize)]
    struct Committed {
        check: Vec<Check>,
    }

    #[derive(Deserialize)]
    struct Check {
        features: Vec<f64>,
        probability: f64,
    }

    fn gives_scikit_learns_probabilities<const N: usize>(text: &str) {
        let head = Trees::<N>::from_json(text).expect("the committed head");
        let committed: Committed = serde_json::from_str(text).expect("the committed head's check rows");
        assert!(committed.check.len() >= 8);
        for row in &committed.check {
            let x: [f64; N] = row.features.as_slice().try_into().expect("a row of every feature");
            let p = head.score(&x);
            assert!((p - row.probability).abs() < 1e-9, "{p} against {}", row.probability);
        }
    }

    #[test]
    fn the_committed_heads_give_scikit_learns_probabilities() {
        gives_scikit_learns_probabilities::<CANDIDATE_FEATURES>(include_str!("../../../models/heads/period_head.json"));
        gives_scikit_learns_probabilities::<CHANGE_FEATURES>(include_str!("../../../models/heads/change_head.json"));
        gives_scikit_learns_probabilities::<ATTRIBUTION_FEATURES>(include_str!("../../../models/heads/attribution_head.json"));
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

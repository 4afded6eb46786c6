//! The period head: a small learned scorer of the candidate periods the layer sieve weighs each
//! round (see [`super::patterns`]). The rules of the sieve keep the layers they find; the head
//! adds the candidates they pass over but that look, to a model trained on the synthetic truth,
//! like a layer's period (a quiet layer nested in a louder one's band, say).
//!
//! It is a one-hidden-layer perceptron (ReLU, then a logistic output) over standardised
//! features, trained and written by `models/strata_models/period_head.py` as JSON and listed,
//! with its sha256, in the model folder's manifest.
//!
//! ```
//! use strata::layers::period_head::PeriodHead;
//! use strata::layers::patterns::CANDIDATE_FEATURES;
//!
//! let n = CANDIDATE_FEATURES;
//! let json = format!(
//!     r#"{{"mean": {m:?}, "scale": {s:?}, "hidden_weights": [{w:?}], "hidden_bias": [0.0],
//!          "out_weights": [1.0], "out_bias": 0.0}}"#,
//!     m = vec![0.0; n], s = vec![1.0; n], w = vec![0.0; n],
//! );
//! let head = PeriodHead::from_json(&json).unwrap();
//! assert_eq!(head.score(&[0.0; CANDIDATE_FEATURES]), 0.5);
//! // A head of the wrong size is refused, with what is wrong.
//! assert!(PeriodHead::from_json(r#"{"mean": [0.0], "scale": [1.0], "hidden_weights": [], "hidden_bias": [], "out_weights": [], "out_bias": 0.0}"#).is_err());
//! ```

use serde::Deserialize;

use super::patterns::CANDIDATE_FEATURES;

/// Weights of the head, as `models/` writes them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PeriodHead {
    /// Per feature: the training set's mean and standard deviation.
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// Per hidden unit: its weight for each feature, and its bias.
    hidden_weights: Vec<Vec<f64>>,
    hidden_bias: Vec<f64>,
    /// Per hidden unit: its weight in the output's logit.
    out_weights: Vec<f64>,
    out_bias: f64,
}

/// Why a period head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PeriodHeadError {
    #[error("not a period head: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the period head's {what} has {got} values, expected {expected}")]
    Shape { what: &'static str, got: usize, expected: usize },
}

impl PeriodHead {
    /// Reads and checks a head written by `models/strata_models/period_head.py`.
    pub fn from_json(text: &str) -> Result<Self, PeriodHeadError> {
        let head: PeriodHead = serde_json::from_str(text)?;
        let hidden = head.hidden_bias.len();
        let shape = |what, got, expected| if got == expected { Ok(()) } else { Err(PeriodHeadError::Shape { what, got, expected }) };
        shape("mean", head.mean.len(), CANDIDATE_FEATURES)?;
        shape("scale", head.scale.len(), CANDIDATE_FEATURES)?;
        shape("hidden_weights", head.hidden_weights.len(), hidden)?;
        shape("out_weights", head.out_weights.len(), hidden)?;
        for row in &head.hidden_weights {
            shape("hidden_weights row", row.len(), CANDIDATE_FEATURES)?;
        }
        Ok(head)
    }

    /// The probability (0..1) that a candidate with these features is a layer's period.
    pub fn score(&self, features: &[f64; CANDIDATE_FEATURES]) -> f64 {
        let mut z = [0.0; CANDIDATE_FEATURES];
        for (i, v) in z.iter_mut().enumerate() {
            // A feature constant in training (scale 0) carries nothing.
            *v = if self.scale[i] > 1e-12 { (features[i] - self.mean[i]) / self.scale[i] } else { 0.0 };
        }
        let logit = self
            .hidden_weights
            .iter()
            .zip(&self.hidden_bias)
            .zip(&self.out_weights)
            .map(|((w, b), out)| out * (w.iter().zip(&z).map(|(a, x)| a * x).sum::<f64>() + b).max(0.0))
            .sum::<f64>()
            + self.out_bias;
        1.0 / (1.0 + (-logit).exp())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text is a head or an error, never a panic; any head read scores 0..1 anywhere.
        #[test]
        fn any_text_reads_or_is_refused(text in "\\PC*", x in prop::array::uniform14(-1e6..1e6f64)) {
            if let Ok(head) = PeriodHead::from_json(&text) {
                prop_assert!((0.0..=1.0).contains(&head.score(&x)));
            }
        }

        /// Heads of the right shape with any weights score a probability, whatever the features.
        #[test]
        fn any_weights_score_a_probability(w in prop::collection::vec(-1e3..1e3f64, 2 * CANDIDATE_FEATURES + 3), x in prop::array::uniform14(-1e9..1e9f64)) {
            let n = CANDIDATE_FEATURES;
            let json = format!(
                r#"{{"mean": {m:?}, "scale": {s:?}, "hidden_weights": [{h:?}], "hidden_bias": [{b:?}], "out_weights": [{o:?}], "out_bias": 0.0}}"#,
                m = &w[..n], s = vec![1.0; n], h = &w[n..2 * n], b = w[2 * n], o = w[2 * n + 1],
            );
            let head = PeriodHead::from_json(&json).expect("a head of the right shape");
            let p = head.score(&x);
            prop_assert!((0.0..=1.0).contains(&p), "{}", p);
        }
    }

    #[test]
    fn the_committed_head_reads_and_scores_probabilities() {
        let head = PeriodHead::from_json(include_str!("../../../models/heads/period_head.json")).expect("the committed head");
        for x in [[0.0; CANDIDATE_FEATURES], [1.0; CANDIDATE_FEATURES], [-3.0; CANDIDATE_FEATURES]] {
            let p = head.score(&x);
            assert!((0.0..=1.0).contains(&p), "{p}");
        }
    }

    #[test]
    fn a_head_whose_rows_do_not_match_the_features_is_refused() {
        let n = CANDIDATE_FEATURES;
        let json = format!(
            r#"{{"mean": {m:?}, "scale": {s:?}, "hidden_weights": [{w:?}], "hidden_bias": [0.0], "out_weights": [1.0], "out_bias": 0.0}}"#,
            m = vec![0.0; n],
            s = vec![1.0; n],
            w = vec![0.0; n - 1],
        );
        let err = PeriodHead::from_json(&json).expect_err("a short row");
        assert!(err.to_string().contains("hidden_weights row"), "{err}");
    }
}

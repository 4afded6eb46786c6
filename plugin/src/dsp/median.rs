//! Medians across a few rows, position by position: what a repeating model takes of a frame's
//! repeats (the layer search's models of what each layer explains, the stems' stages).
//!
//! Sorting each position's column was the largest cost of both; here the rows are sorted all at
//! once, [`LANES`] positions at a time, by an odd-even transposition sort of vector minima and
//! maxima: branch-free, so it vectorises. The result is the same value a sort gives.
//!
//! ```
//! use strata::dsp::median::median_rows;
//!
//! let rows = [[1.0_f32, 9.0, 5.0], [3.0, 7.0, 5.0], [2.0, 8.0, 4.0], [4.0, 6.0, 6.0]];
//! let mut out = [0.0; 3];
//! median_rows(&rows, &mut out);
//! // Of an even count, the upper of the two middle values.
//! assert_eq!(out, [3.0, 8.0, 5.0]);
//! ```

/// The most rows a median is taken of.
pub const MAX_ROWS: usize = 16;
/// Positions whose medians are taken together, wide enough for vector min and max instructions.
const LANES: usize = 8;

/// The median of `rows` (up to [`MAX_ROWS`] of them; more are ignored), position by position, for
/// the first `out.len()` positions of each row, into `out`; of an even count, the upper of the two
/// middle values (the value at `rows.len() / 2` once sorted). No rows give zeros.
pub fn median_rows<R: AsRef<[f32]>>(rows: &[R], out: &mut [f32]) {
    let n = rows.len().min(MAX_ROWS);
    if n == 0 {
        out.fill(0.0);
        return;
    }
    let width = out.len();
    let mut lanes = [[0.0_f32; LANES]; MAX_ROWS];
    for f in (0..width).step_by(LANES) {
        let take = LANES.min(width - f);
        for (lane, row) in lanes.iter_mut().zip(rows) {
            lane[..take].copy_from_slice(&row.as_ref()[f..f + take]);
        }
        for pass in 0..n {
            for i in (pass % 2..n - 1).step_by(2) {
                let (low, high) = lanes.split_at_mut(i + 1);
                for (a, b) in low[i].iter_mut().zip(high[0].iter_mut()) {
                    let (x, y) = (*a, *b);
                    *a = x.min(y);
                    *b = x.max(y);
                }
            }
        }
        out[f..f + take].copy_from_slice(&lanes[n / 2][..take]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_position_gets_its_columns_median() {
        // Values that tie, every count of rows, and a width that is not a multiple of the lanes.
        let width = 2 * LANES + 3;
        let rows: Vec<Vec<f32>> = (0..MAX_ROWS).map(|r| (0..width).map(|f| ((f * 7 + r * 13) % 11) as f32 * 0.5).collect()).collect();
        let mut out = vec![0.0; width];
        for n in 1..=MAX_ROWS {
            median_rows(&rows[..n], &mut out);
            for f in 0..width {
                let mut column: Vec<f32> = rows[..n].iter().map(|r| r[f]).collect();
                column.sort_by(f32::total_cmp);
                assert_eq!(out[f], column[n / 2], "{n} rows, position {f}");
            }
        }
    }

    #[test]
    fn no_rows_give_zeros() {
        let mut out = [1.0_f32; 5];
        median_rows::<[f32; 5]>(&[], &mut out);
        assert_eq!(out, [0.0; 5]);
    }
}

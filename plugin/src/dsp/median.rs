//! Medians across a few rows, position by position: what a repeating model takes of a frame's
//! repeats (the layer search's models of what each layer explains, the stems' stages).
//!
//! Sorting each position's column was the largest cost of both; here the rows are ordered all
//! at once, [`LANES`] positions at a time, by a network of vector minima and maxima: branch-free,
//! so it vectorises. The network is Batcher's odd-even merge sort of [`MAX_ROWS`], cut down to
//! the compare-exchanges that lead to the middle position (for 16 rows 53 of its 63, where the
//! odd-even transposition sort before it took 120). The result is the same value a sort gives.
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
    let network = &median_networks()[n];
    let width = out.len();
    let mut lanes = [[0.0_f32; LANES]; MAX_ROWS];
    for f in (0..width).step_by(LANES) {
        let take = LANES.min(width - f);
        for (lane, row) in lanes.iter_mut().zip(rows) {
            lane[..take].copy_from_slice(&row.as_ref()[f..f + take]);
        }
        for &(i, j) in network {
            let (low, high) = lanes.split_at_mut(j);
            for (a, b) in low[i].iter_mut().zip(high[0].iter_mut()) {
                let (x, y) = (*a, *b);
                *a = x.min(y);
                *b = x.max(y);
            }
        }
        out[f..f + take].copy_from_slice(&lanes[n / 2][..take]);
    }
}

/// For each count of rows `n` up to [`MAX_ROWS`], the compare-exchanges `(i, j)`, `i < j`, that
/// bring the value of rank `n / 2` to position `n / 2`.
///
/// Batcher's odd-even merge sort of [`MAX_ROWS`] values sorts `n` of them padded with +∞, and
/// no compare-exchange moves a +∞ (with `i < j`, one at `j` stays there), so those touching a
/// position of `n` or more do nothing and are left out. Of the rest, only those on a path to
/// position `n / 2` are kept, found walking the network backwards from it.
fn median_networks() -> &'static [Vec<(usize, usize)>; MAX_ROWS + 1] {
    static NETWORKS: std::sync::OnceLock<[Vec<(usize, usize)>; MAX_ROWS + 1]> = std::sync::OnceLock::new();
    NETWORKS.get_or_init(|| {
        let sort = odd_even_merge_sort(MAX_ROWS);
        std::array::from_fn(|n| {
            if n == 0 {
                return Vec::new();
            }
            let mut needed = [false; MAX_ROWS];
            needed[n / 2] = true;
            let mut kept = Vec::new();
            for &(i, j) in sort.iter().rev() {
                if j < n && (needed[i] || needed[j]) {
                    (needed[i], needed[j]) = (true, true);
                    kept.push((i, j));
                }
            }
            kept.reverse();
            kept
        })
    })
}

/// Batcher's odd-even merge sort of `n` values (a power of two) as compare-exchanges `(i, j)`,
/// `i < j`, in order.
fn odd_even_merge_sort(n: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            for j in (k % p..n.saturating_sub(k)).step_by(2 * k) {
                for i in 0..k.min(n - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        pairs.push((i + j, i + j + k));
                    }
                }
            }
            k /= 2;
        }
        p *= 2;
    }
    pairs
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
    fn the_network_sorts_and_keeps_only_what_the_middle_needs() {
        let sort = odd_even_merge_sort(MAX_ROWS);
        assert_eq!(sort.len(), 63);
        // Every 0-1 input of 16 comes out sorted (the 0-1 principle: then every input does).
        for bits in 0_u32..1 << MAX_ROWS {
            let mut v: Vec<u32> = (0..MAX_ROWS).map(|k| (bits >> k) & 1).collect();
            for &(i, j) in &sort {
                if v[i] > v[j] {
                    v.swap(i, j);
                }
            }
            assert!(v.windows(2).all(|w| w[0] <= w[1]), "{bits:016b}");
        }
        let networks = median_networks();
        assert_eq!(networks[MAX_ROWS].len(), 53);
        assert!(networks.iter().enumerate().all(|(n, net)| net.iter().all(|&(i, j)| i < j && j < n.max(1))));
    }

    #[test]
    fn random_columns_get_their_medians() {
        let mut state = 7_u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) % 1000) as f32 - 500.0
        };
        let width = 5 * LANES + 1;
        for n in 1..=MAX_ROWS {
            let rows: Vec<Vec<f32>> = (0..n).map(|_| (0..width).map(|_| next()).collect()).collect();
            let mut out = vec![0.0; width];
            median_rows(&rows, &mut out);
            for f in 0..width {
                let mut column: Vec<f32> = rows.iter().map(|r| r[f]).collect();
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

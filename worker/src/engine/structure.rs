//! Where the kept weights of a sparse layer are: compressed rows (CSR, the order the layer's
//! values are stored in) and compressed columns (CSC, for the input gradient through the
//! transpose).

/// The pattern of a `[rows, cols]` weight matrix's kept weights.
///
/// Values are stored in CSR order: row by row, columns increasing, which is also the order of
/// the flat indices `r * cols + c` of the kept weights.
///
/// Invariant, established by the constructors and unchangeable afterwards (the fields are
/// private): every column index is below `cols`, every CSC row below `rows`, and both
/// pointer arrays increase from 0 to `nnz`. The kernels' unchecked loads rely on it, so they
/// check only the sizes of the activations, not every index on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseStructure {
    rows: usize,
    cols: usize,
    /// `row_ptr[r]..row_ptr[r + 1]`: the positions of row `r`'s kept weights.
    row_ptr: Vec<u32>,
    /// The column of each kept weight, in CSR order.
    col_idx: Vec<u32>,
    /// `col_ptr[c]..col_ptr[c + 1]`: the CSC entries of column `c`.
    col_ptr: Vec<u32>,
    /// The row of each CSC entry (increasing within a column).
    csc_row: Vec<u32>,
    /// The CSR position (index into the values) of each CSC entry.
    csc_pos: Vec<u32>,
    /// The CSC entry of each CSR position (the inverse of `csc_pos`).
    csr_to_csc: Vec<u32>,
}

impl SparseStructure {
    /// The structure of `keep` (`[rows, cols]` row-major).
    pub fn from_mask(rows: usize, cols: usize, keep: &[bool]) -> SparseStructure {
        assert_eq!(keep.len(), rows * cols, "the mask must be [rows, cols]");
        let positions = keep
            .iter()
            .enumerate()
            .filter(|(_, &k)| k)
            .map(|(j, _)| ((j / cols) as u32, (j % cols) as u32));
        SparseStructure::from_sorted(rows, cols, positions)
    }

    /// The structure of the kept `(row, col)` positions, given in row-major order.
    pub fn from_sorted(
        rows: usize,
        cols: usize,
        positions: impl Iterator<Item = (u32, u32)>,
    ) -> SparseStructure {
        assert!(
            rows * cols <= u32::MAX as usize,
            "a layer of {rows} x {cols} weights is too large"
        );
        let mut row_ptr = vec![0u32; rows + 1];
        let mut col_idx = Vec::new();
        let mut col_count = vec![0u32; cols + 1];
        let mut last: Option<(u32, u32)> = None;
        for (r, c) in positions {
            assert!(
                (r as usize) < rows && (c as usize) < cols,
                "position outside"
            );
            assert!(last < Some((r, c)), "positions must be sorted and distinct");
            last = Some((r, c));
            row_ptr[r as usize + 1] += 1;
            col_count[c as usize + 1] += 1;
            col_idx.push(c);
        }
        for r in 0..rows {
            row_ptr[r + 1] += row_ptr[r];
        }
        let mut col_ptr = col_count;
        for c in 0..cols {
            col_ptr[c + 1] += col_ptr[c];
        }
        let nnz = col_idx.len();
        let mut next = col_ptr.clone();
        let mut csc_row = vec![0u32; nnz];
        let mut csc_pos = vec![0u32; nnz];
        let mut csr_to_csc = vec![0u32; nnz];
        for r in 0..rows {
            for k in row_ptr[r] as usize..row_ptr[r + 1] as usize {
                let c = col_idx[k] as usize;
                let at = next[c] as usize;
                csc_row[at] = r as u32;
                csc_pos[at] = k as u32;
                csr_to_csc[k] = at as u32;
                next[c] += 1;
            }
        }
        SparseStructure {
            rows,
            cols,
            row_ptr,
            col_idx,
            col_ptr,
            csc_row,
            csc_pos,
            csr_to_csc,
        }
    }

    /// Number of kept weights.
    pub fn nnz(&self) -> usize {
        self.col_idx.len()
    }

    /// Rows of the matrix (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the matrix (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `row_ptr[r]..row_ptr[r + 1]`: the positions of row `r`'s kept weights (`rows + 1`
    /// entries).
    pub fn row_ptr(&self) -> &[u32] {
        &self.row_ptr
    }

    /// The column of each kept weight, in CSR order (each below `cols`).
    pub fn col_idx(&self) -> &[u32] {
        &self.col_idx
    }

    /// `col_ptr[c]..col_ptr[c + 1]`: the CSC entries of column `c` (`cols + 1` entries).
    pub fn col_ptr(&self) -> &[u32] {
        &self.col_ptr
    }

    /// The row of each CSC entry, increasing within a column (each below `rows`).
    pub fn csc_row(&self) -> &[u32] {
        &self.csc_row
    }

    /// The CSR position (index into the values) of each CSC entry.
    pub fn csc_pos(&self) -> &[u32] {
        &self.csc_pos
    }

    /// The values (in CSR order) rearranged in CSC order.
    pub fn to_csc(&self, values: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; values.len()];
        self.to_csc_into(values, &mut out);
        out
    }

    /// [`SparseStructure::to_csc`] into `out` (one value per kept weight).
    pub fn to_csc_into(&self, values: &[f32], out: &mut [f32]) {
        assert_eq!(values.len(), self.nnz(), "one value per kept weight");
        assert_eq!(out.len(), self.nnz(), "one value per kept weight");
        for (&at, &v) in self.csr_to_csc.iter().zip(values) {
            out[at as usize] = v;
        }
    }

    /// The `(row, col)` of every kept weight in value order.
    pub fn positions(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.rows).flat_map(move |r| {
            (self.row_ptr[r] as usize..self.row_ptr[r + 1] as usize)
                .map(move |k| (r, self.col_idx[k] as usize))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_and_csc_describe_the_same_weights() {
        // [[1 0 1]
        //  [0 0 0]
        //  [0 1 1]]
        let keep = [true, false, true, false, false, false, false, true, true];
        let s = SparseStructure::from_mask(3, 3, &keep);
        assert_eq!(s.nnz(), 4);
        assert_eq!(s.row_ptr, vec![0, 2, 2, 4]);
        assert_eq!(s.col_idx, vec![0, 2, 1, 2]);
        assert_eq!(s.col_ptr, vec![0, 1, 2, 4]);
        assert_eq!(s.csc_row, vec![0, 2, 0, 2]);
        assert_eq!(s.csc_pos, vec![0, 2, 1, 3]);
        assert_eq!(s.csr_to_csc, vec![0, 2, 1, 3]);
        assert_eq!(s.to_csc(&[1.0, 2.0, 3.0, 4.0]), vec![1.0, 3.0, 2.0, 4.0]);
        let positions: Vec<_> = s.positions().collect();
        assert_eq!(positions, vec![(0, 0), (0, 2), (2, 1), (2, 2)]);
    }

    #[test]
    fn empty_and_single_weight_layers() {
        let s = SparseStructure::from_mask(2, 3, &[false; 6]);
        assert_eq!(s.nnz(), 0);
        assert_eq!(s.row_ptr, vec![0, 0, 0]);
        assert_eq!(s.col_ptr, vec![0, 0, 0, 0]);
        let mut one = [false; 6];
        one[4] = true;
        let s = SparseStructure::from_mask(2, 3, &one);
        assert_eq!(s.positions().collect::<Vec<_>>(), vec![(1, 1)]);
        assert_eq!(s.csc_pos, vec![0]);
    }
}

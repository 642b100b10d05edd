//! The fused pass split over threads: its tiles are cut into fixed chunks (the cut depends on
//! the number of frames only, never on the number of threads), each chunk runs its tiles in
//! order into its own W accumulators, and the accumulators are summed in chunk order. The
//! H update of a frame is the same whichever thread runs it, so the result is the same bits
//! for every number of threads >= 2, and differs from the one-thread pass only by the order
//! of the W numerator's sums (float rounding).
//!
//! The pass runs on the threads of the rayon pool that [`super::fit`] is called in
//! ([`rayon::ThreadPool::install`], e.g. with a pool from [`thread_pool`]); called on any
//! other thread (the plugin's trainer, the tests) the fit keeps the one-thread pass.

use std::sync::Mutex;

use rayon::prelude::*;

use super::tile::{step_tile, TileInputs, TileScratch};
use super::updates::TILE;
use crate::nmf::NmfError;

/// Most chunks a pass is cut into: enough for a balanced load on a few dozen threads, few
/// enough that the accumulators (one fp x kp pair per chunk) stay small beside V.
const MAX_CHUNKS: usize = 32;

/// Entries of the W accumulators each reduction task sums.
const REDUCE_BLOCK: usize = 4096;

/// A rayon pool of `threads` threads for [`super::fit`], [`super::fit_activations`] and the
/// semi-supervised fit to run in ([`rayon::ThreadPool::install`]). Built per use, not
/// globally.
///
/// # Errors
/// [`NmfError::InvalidInput`] if `threads` is 0 or the system refuses the threads.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, NmfError> {
    if threads == 0 {
        return Err(NmfError::InvalidInput(
            "the number of threads must be at least 1".into(),
        ));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("nmf-fit-{i}"))
        .build()
        .map_err(|e| NmfError::InvalidInput(format!("cannot start {threads} threads: {e}")))
}

/// The threads the fit may use from here: those of the current rayon pool when called on
/// one of its threads, else 1.
pub(super) fn available_threads() -> usize {
    if rayon::current_thread_index().is_some() {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// The W accumulators of one chunk of tiles.
struct Chunk {
    num_w: Vec<f32>,
    den_w: Vec<f32>,
}

/// The buffers of the parallel pass, allocated once before the first iteration.
pub(super) struct ParallelPass {
    tiles_per_chunk: usize,
    chunks: Vec<Chunk>,
    /// The divergence of each tile, summed in tile order after the pass.
    tile_cost: Vec<f64>,
    /// One set of tile buffers per thread of the pool, indexed by
    /// [`rayon::current_thread_index`]; each is only ever locked by its own thread.
    scratch: Vec<Mutex<TileScratch>>,
}

impl ParallelPass {
    /// Buffers for `n_tiles` tiles of fp bins and kp components, `threads` threads.
    pub(super) fn new(
        n_tiles: usize,
        fp: usize,
        kp: usize,
        beta: f32,
        update_w: bool,
        threads: usize,
    ) -> Self {
        let n_tiles = n_tiles.max(1);
        let tiles_per_chunk = n_tiles.div_ceil(MAX_CHUNKS.min(n_tiles));
        let n_chunks = n_tiles.div_ceil(tiles_per_chunk);
        let (num_len, den_len) = match (update_w, beta == 1.0) {
            (false, _) => (0, 0),
            (true, true) => (fp * kp, kp),
            (true, false) => (fp * kp, fp * kp),
        };
        Self {
            tiles_per_chunk,
            chunks: (0..n_chunks)
                .map(|_| Chunk {
                    num_w: vec![0.0; num_len],
                    den_w: vec![0.0; den_len],
                })
                .collect(),
            tile_cost: vec![0.0; n_tiles],
            scratch: (0..threads.max(1))
                .map(|_| Mutex::new(TileScratch::new(fp, kp, beta)))
                .collect(),
        }
    }

    /// One pass over every tile of `ht` (the activations, n_tiles x TILE x kp), each tile
    /// through [`step_tile`]. With `x.update_w`, `num_w` and `den_w` receive the sums of the
    /// chunks' accumulators in chunk order (they are overwritten). Returns the summed
    /// divergence of the tiles (0 unless `x.cost`). Allocates nothing.
    pub(super) fn run(
        &mut self,
        x: &TileInputs,
        ht: &mut [f32],
        num_w: &mut [f32],
        den_w: &mut [f32],
    ) -> f64 {
        let kp = x.kp;
        let n_tiles = self.tile_cost.len();
        let tpc = self.tiles_per_chunk;
        let scratch = &self.scratch;
        ht[..n_tiles * TILE * kp]
            .par_chunks_mut(tpc * TILE * kp)
            .zip(self.chunks.par_iter_mut())
            .zip(self.tile_cost.par_chunks_mut(tpc))
            .enumerate()
            .for_each(|(c, ((ht_c, acc), costs))| {
                let i = rayon::current_thread_index().unwrap_or(0) % scratch.len();
                let mut s = scratch[i].lock().unwrap_or_else(|e| e.into_inner());
                acc.num_w.fill(0.0);
                acc.den_w.fill(0.0);
                for (j, (ht_t, cost)) in ht_c.chunks_mut(TILE * kp).zip(costs).enumerate() {
                    let n0 = (c * tpc + j) * TILE;
                    *cost = step_tile(x, &mut s, n0, ht_t, &mut acc.num_w, &mut acc.den_w);
                }
            });
        if x.update_w {
            let chunks = &self.chunks;
            reduce(chunks, num_w, |c| &c.num_w);
            reduce(chunks, &mut den_w[..chunks[0].den_w.len()], |c| &c.den_w);
        }
        let mut total = 0.0f64;
        for &c in &self.tile_cost {
            total += c;
        }
        total
    }
}

/// `out = sum over chunks (in chunk order) of part(chunk)`, blocks of entries in parallel.
fn reduce(chunks: &[Chunk], out: &mut [f32], part: impl Fn(&Chunk) -> &Vec<f32> + Sync) {
    out.par_chunks_mut(REDUCE_BLOCK)
        .enumerate()
        .for_each(|(b, o)| {
            let r = b * REDUCE_BLOCK..b * REDUCE_BLOCK + o.len();
            o.copy_from_slice(&part(&chunks[0])[r.clone()]);
            for c in &chunks[1..] {
                for (y, &a) in o.iter_mut().zip(&part(c)[r.clone()]) {
                    *y += a;
                }
            }
        });
}

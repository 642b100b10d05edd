//! The fused pass in fixed chunks of tiles, on one thread or split over several: the tiles
//! are cut into chunks (the cut depends on the number of frames only, never on the number
//! of threads), each chunk runs its tiles in order into W accumulators of its own that start
//! from zero, and the chunks' accumulators are summed in chunk order (a left fold, entry by
//! entry). The H update of a frame and every partial sum are computed by the same
//! instructions whichever thread runs them, so W, H and the cost history are the same bits
//! for every number of threads, one included.
//!
//! The pass runs on the threads of the rayon pool that [`super::fit`] is called in
//! ([`rayon::ThreadPool::install`], e.g. with a pool from [`thread_pool`]); called on any
//! other thread (the plugin's trainer, the tests) it runs the chunks one after the other on
//! the calling thread, with one chunk's accumulators, adding each into the total as it ends.

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

/// Tiles per chunk for a pass of `n_tiles` tiles (>= 1): at most [`MAX_CHUNKS`] chunks,
/// all but the last of equal size. Depends on the number of tiles only.
fn tiles_per_chunk(n_tiles: usize) -> usize {
    let n_tiles = n_tiles.max(1);
    n_tiles.div_ceil(MAX_CHUNKS.min(n_tiles))
}

/// Lengths of the W numerator and denominator accumulators (0 without a W update; the
/// beta = 1 denominator is the row sums of H, kp entries).
fn acc_lens(fp: usize, kp: usize, beta: f32, update_w: bool) -> (usize, usize) {
    match (update_w, beta == 1.0) {
        (false, _) => (0, 0),
        (true, true) => (fp * kp, kp),
        (true, false) => (fp * kp, fp * kp),
    }
}

impl Chunk {
    fn new((num_len, den_len): (usize, usize)) -> Self {
        Self {
            num_w: vec![0.0; num_len],
            den_w: vec![0.0; den_len],
        }
    }

    fn clear(&mut self) {
        self.num_w.fill(0.0);
        self.den_w.fill(0.0);
    }
}

/// The one-thread pass in the chunks of [`ParallelPass`], with the same sums in the same
/// order: its result is the same bits. Allocated once before the first iteration.
pub(super) struct SerialPass {
    tiles_per_chunk: usize,
    n_tiles: usize,
    /// The accumulators of the chunk being run.
    acc: Chunk,
}

impl SerialPass {
    /// Buffers for `n_tiles` tiles of fp bins and kp components.
    pub(super) fn new(n_tiles: usize, fp: usize, kp: usize, beta: f32, update_w: bool) -> Self {
        Self {
            tiles_per_chunk: tiles_per_chunk(n_tiles),
            n_tiles,
            acc: Chunk::new(acc_lens(fp, kp, beta, update_w)),
        }
    }

    /// [`ParallelPass::run`] on the calling thread, with its tile buffers `s`.
    pub(super) fn run(
        &mut self,
        x: &TileInputs,
        s: &mut TileScratch,
        ht: &mut [f32],
        num_w: &mut [f32],
        den_w: &mut [f32],
    ) -> f64 {
        let kp = x.kp;
        let tpc = self.tiles_per_chunk;
        let acc = &mut self.acc;
        let mut total = 0.0f64;
        let chunks = ht[..self.n_tiles * TILE * kp].chunks_mut(tpc * TILE * kp);
        for (c, ht_c) in chunks.enumerate() {
            acc.clear();
            for (j, ht_t) in ht_c.chunks_mut(TILE * kp).enumerate() {
                let n0 = (c * tpc + j) * TILE;
                total += step_tile(x, s, n0, ht_t, &mut acc.num_w, &mut acc.den_w);
            }
            if x.update_w {
                fold(c, &mut num_w[..acc.num_w.len()], &acc.num_w);
                fold(c, &mut den_w[..acc.den_w.len()], &acc.den_w);
            }
        }
        total
    }
}

/// One step of the chunk-order sum: `out = part` for chunk 0, else `out += part`.
fn fold(chunk: usize, out: &mut [f32], part: &[f32]) {
    if chunk == 0 {
        out.copy_from_slice(part);
    } else {
        for (y, &a) in out.iter_mut().zip(part) {
            *y += a;
        }
    }
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
        let tiles_per_chunk = tiles_per_chunk(n_tiles);
        let n_chunks = n_tiles.div_ceil(tiles_per_chunk);
        let lens = acc_lens(fp, kp, beta, update_w);
        Self {
            tiles_per_chunk,
            chunks: (0..n_chunks).map(|_| Chunk::new(lens)).collect(),
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
                acc.clear();
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

/// `out = sum over chunks (in chunk order) of part(chunk)`, blocks of entries in parallel:
/// per entry the same left fold as [`SerialPass::run`].
fn reduce(chunks: &[Chunk], out: &mut [f32], part: impl Fn(&Chunk) -> &Vec<f32> + Sync) {
    out.par_chunks_mut(REDUCE_BLOCK)
        .enumerate()
        .for_each(|(b, o)| {
            let r = b * REDUCE_BLOCK..b * REDUCE_BLOCK + o.len();
            for (c, chunk) in chunks.iter().enumerate() {
                fold(c, o, &part(chunk)[r.clone()]);
            }
        });
}

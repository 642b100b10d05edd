//! [`ControllerValues`]: the edit controller's view of parameters the host sets while the
//! processor runs.
//!
//! nice-plug 0.4.2's `IEditController::setParamNormalized` returns `kResultOk` and drops the
//! value while processing (it expects the same change in the next `process` call's
//! `inputParameterChanges`), and its `getParamNormalized` reads the processor's value. A host
//! that sets a value on the controller and reads it back before the next block gets the old
//! one; the VST3 SDK validator's "Parameter Bypass persistence" test does exactly that. In VST3
//! the controller holds the host's view of every parameter: `getParamNormalized` returns what
//! `setParamNormalized` set (Steinberg, VST 3 API documentation, `IEditController`, and "Parameters
//! and Automation": the host sends the same change to the processor).
//!
//! So the layer keeps, per parameter, the last value the host set on the controller while
//! processing, marked pending until the processor takes it over:
//!
//! - `process` (audio thread) clears the pending mark of each parameter in the block's
//!   `inputParameterChanges` after the wrapper applied them: from then on the processor's value
//!   is the truth again. Binary search over a fixed table and atomic stores only: no lock, no
//!   allocation;
//! - `setProcessing(false)` hands every value still pending to the wrapper, which applies it now
//!   that processing stopped (a host that set the controller but never sent the change to the
//!   processor still gets a plugin that matches its controller);
//! - a state load (`setState`, `setComponentState`) drops every pending value: the state decides.

use super::*;

use std::sync::atomic::AtomicU64;

/// One slot per parameter, in ascending parameter id order.
pub(super) struct ControllerValues {
    /// Parameter ids, sorted (fixed after construction).
    ids: Box<[ParamID]>,
    /// Each parameter's VST3 `stepCount` (0: continuous).
    steps: Box<[int32]>,
    /// The normalized value last set on the controller while processing, as `f64` bits.
    values: Box<[AtomicU64]>,
    /// True while `values[i]` is newer than the processor's value.
    pending: Box<[AtomicBool]>,
    /// Between `setProcessing(true)` and `setProcessing(false)`.
    processing: AtomicBool,
}

impl ControllerValues {
    /// A table for the parameters `(id, stepCount)` (any order; an id given twice is kept
    /// once).
    pub(super) fn new(params: impl IntoIterator<Item = (ParamID, int32)>) -> Self {
        let mut params: Vec<(ParamID, int32)> = params.into_iter().collect();
        params.sort_unstable_by_key(|p| p.0);
        params.dedup_by_key(|p| p.0);
        let n = params.len();
        Self {
            ids: params.iter().map(|p| p.0).collect(),
            steps: params.iter().map(|p| p.1).collect(),
            values: (0..n).map(|_| AtomicU64::new(0)).collect(),
            pending: (0..n).map(|_| AtomicBool::new(false)).collect(),
            processing: AtomicBool::new(false),
        }
    }

    fn slot(&self, id: ParamID) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// The `stepCount` of `id`, if it is a parameter.
    pub(super) fn step_count(&self, id: ParamID) -> Option<int32> {
        self.slot(id).map(|i| self.steps[i])
    }

    pub(super) fn processing(&self) -> bool {
        self.processing.load(Ordering::SeqCst)
    }

    pub(super) fn set_processing(&self, on: bool) {
        self.processing.store(on, Ordering::SeqCst);
    }

    /// Holds `value` for `id` until the processor takes it over. False for an unknown id.
    pub(super) fn hold(&self, id: ParamID, value: f64) -> bool {
        let Some(i) = self.slot(id) else {
            return false;
        };
        self.values[i].store(value.to_bits(), Ordering::Relaxed);
        self.pending[i].store(true, Ordering::Release);
        true
    }

    /// The value held for `id`, if one is pending.
    pub(super) fn held(&self, id: ParamID) -> Option<f64> {
        let i = self.slot(id)?;
        self.pending[i]
            .load(Ordering::Acquire)
            .then(|| f64::from_bits(self.values[i].load(Ordering::Relaxed)))
    }

    /// The processor received a value for `id`: the held one, if any, is no longer newer.
    /// Real-time safe (binary search and one atomic store).
    pub(super) fn delivered(&self, id: ParamID) {
        if let Some(i) = self.slot(id) {
            self.pending[i].store(false, Ordering::Release);
        }
    }

    /// Calls [`Self::delivered`] for every parameter with a queue in the block's
    /// `inputParameterChanges`. Real-time safe (the host's queue getters, no allocation).
    ///
    /// # Safety
    /// `data` is the host's valid `ProcessData`.
    pub(super) unsafe fn delivered_in(&self, data: &ProcessData) {
        // SAFETY: the host's parameter changes, or null.
        let Some(changes) = (unsafe { ComRef::from_raw(data.inputParameterChanges) }) else {
            return;
        };
        // SAFETY: a valid IParameterChanges; indices below its count.
        for index in 0..unsafe { changes.getParameterCount() } {
            if let Some(queue) = unsafe { ComRef::from_raw(changes.getParameterData(index)) } {
                if unsafe { queue.getPointCount() } > 0 {
                    self.delivered(unsafe { queue.getParameterId() });
                }
            }
        }
    }

    /// Clears every pending mark, calling `apply(id, value)` for each value that was pending.
    pub(super) fn take_pending(&self, mut apply: impl FnMut(ParamID, f64)) {
        for (i, &id) in self.ids.iter().enumerate() {
            if self.pending[i].swap(false, Ordering::AcqRel) {
                apply(id, f64::from_bits(self.values[i].load(Ordering::Relaxed)));
            }
        }
    }

    /// Drops every pending value (a state load decides the values).
    pub(super) fn clear(&self) {
        self.take_pending(|_, _| {});
    }
}

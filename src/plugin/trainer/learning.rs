//! What the trainer thread computes: a dictionary learned from a captured clip (alone or given
//! the other sources' templates), merged into the session's dictionary, mapped to the session
//! rate, exported on request.

use std::ops::ControlFlow;
use std::path::Path;

use super::*;

/// Learns a dictionary of `k` templates labelled `label` from a mono clip: STFT magnitude
/// (n_fft and hop n_fft/4 from `settings`, floored at 1e-6 times its maximum), then
/// [`fit`] with NNDSVDa initialization. `observer(fraction done)` is called every iteration
/// and stops the fit by returning false.
pub fn learn_capture(
    clip: &[f32],
    sample_rate: u32,
    settings: &LearnSettings,
    label: &str,
    k: usize,
    observer: &mut dyn FnMut(f32) -> bool,
) -> Result<Dictionary, String> {
    let n_fft = settings.n_fft;
    let hop = n_fft / 4;
    if clip.len() < n_fft {
        return Err(format!(
            "the capture is too short ({} samples, at least n_fft = {n_fft} needed)",
            clip.len()
        ));
    }
    if k == 0 {
        return Err("the number of components is 0".into());
    }
    let stft = Stft::new(n_fft, hop).map_err(|e| e.to_string())?;
    let opts = FitOptions {
        n_components: k,
        beta: settings.beta,
        max_iter: settings.iterations.max(1),
        init: Init::Nndsvda,
        ..FitOptions::default()
    };
    // Non-finite samples (a NaN burst on the track) would poison the whole clip.
    let clip: Vec<f32> = clip
        .iter()
        .map(|x| if x.is_finite() { *x } else { 0.0 })
        .collect();
    let (d, _) = crate::dsp::learn_dictionary(
        &clip,
        sample_rate,
        &stft,
        SpectrogramKind::Magnitude,
        &opts,
        label,
        &mut fraction_observer(observer),
    )
    .map_err(|e| e.to_string())?;
    d.validate().map_err(|e| e.to_string())?;
    Ok(d)
}

/// [`learn_capture`] given the fixed templates of `known` (at the clip's rate and STFT,
/// n_fft and hop from `known`): `k` templates labelled `label` that learn only what `known`
/// does not explain, by [`crate::nmf::fit_semi`] with the overlap penalty (weight 5, no
/// release stage), as `nmfsep learn --given` does; the templates in the dictionary convention
/// of [`crate::nmf::SemiFactorization::free_templates`]. `observer` as in [`learn_capture`].
pub fn learn_capture_given(
    clip: &[f32],
    known: &Dictionary,
    settings: &LearnSettings,
    label: &str,
    k: usize,
    observer: &mut dyn FnMut(f32) -> bool,
) -> Result<Dictionary, String> {
    if clip.len() < known.n_fft {
        return Err(format!(
            "the capture is too short ({} samples, at least n_fft = {} needed)",
            clip.len(),
            known.n_fft
        ));
    }
    let clip: Vec<f32> = clip
        .iter()
        .map(|x| if x.is_finite() { *x } else { 0.0 })
        .collect();
    let opts = crate::nmf::SemiOptions {
        n_free: k,
        beta: known.beta,
        max_iter: settings.iterations.max(1),
        release_iter: 0,
        ..crate::nmf::SemiOptions::default()
    };
    let mut observer = fraction_observer(observer);
    let (d, _, _) = crate::dsp::learn::learn_given(&clip, known, None, &opts, label, &mut observer)
        .map_err(|e| e.to_string())?;
    d.validate().map_err(|e| e.to_string())?;
    Ok(d)
}

/// The fits' progress as the trainer reports it: `observer(fraction done)`, which stops the
/// fit by returning false.
fn fraction_observer(
    observer: &mut dyn FnMut(f32) -> bool,
) -> impl FnMut(crate::nmf::Progress) -> ControlFlow<()> + '_ {
    move |p| {
        if observer(p.iteration as f32 / p.max_iter.max(1) as f32) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }
}

/// Merges newly learned components (all with one label) into the dictionary: the old
/// components with that label are replaced, the others keep their assignment entries, and the
/// new ones get [`default_assignment`] entries. An old dictionary at another sample rate or
/// n_fft is first mapped onto the new one's STFT ([`Dictionary::mapped_to`]; the merged
/// dictionary is then at the new one's rate and n_fft, and the note says what was mapped).
/// One that still differs (hop ratio, beta, spectrogram kind: [`Dictionary::compatible_with`])
/// is replaced as a whole; the note says so.
pub fn merge_learned(
    old: Option<&Dictionary>,
    old_assignment: &[usize],
    new: Dictionary,
) -> (Dictionary, Vec<usize>, Option<String>) {
    let new_assignment = default_assignment(&new);
    let Some(old) = old else {
        return (new, new_assignment, None);
    };
    let (mapped, note) = match old.for_stft(new.sample_rate, new.n_fft) {
        Ok(m) => m,
        Err(e) => return (new, new_assignment, Some(e.to_string())),
    };
    let mapping = note.map(|n| format!("the previous components were {n}"));
    let old = &mapped;
    if old.compatible_with(&new).is_err() {
        return (
            new,
            new_assignment,
            Some("learning settings changed: the previous components were dropped".into()),
        );
    }
    let label = new.labels.first().cloned().unwrap_or_default();
    let old_assignment = effective_assignment(old, old_assignment);
    let keep: Vec<usize> = (0..old.n_components())
        .filter(|&i| old.labels[i] != label)
        .collect();
    if keep.is_empty() {
        return (new, new_assignment, None);
    }
    let kept = Dictionary {
        w: old.w.select(Axis(1), &keep),
        labels: keep.iter().map(|&i| old.labels[i].clone()).collect(),
        ..old.clone()
    };
    match Dictionary::concat(&[kept, new.clone()]) {
        Ok(d) => {
            let mut a: Vec<usize> = keep.iter().map(|&i| old_assignment[i]).collect();
            a.extend(new_assignment);
            (d, a, mapping)
        }
        Err(e) => (new, new_assignment, Some(e.to_string())),
    }
}

/// What an export request writes: a dictionary or a trained model, as its `.npz` file.
pub(super) trait Exportable: Clone {
    fn save_npz(&self, path: &Path) -> Result<(), crate::nmf::DictionaryError>;
}

impl Exportable for Dictionary {
    fn save_npz(&self, path: &Path) -> Result<(), crate::nmf::DictionaryError> {
        self.save(path)
    }
}

impl Exportable for crate::trained::SeparatorModel {
    fn save_npz(&self, path: &Path) -> Result<(), crate::nmf::DictionaryError> {
        self.save(path)
    }
}

/// An export request: when `request` (a path) changed since `*seen`, writes `dict` there as
/// its `.npz` file, empties the request, and says what happened ("exported {what} to
/// PATH", the error, or "export: {none}" without one). An empty path is no request.
pub(super) fn export_if_requested<T: Exportable>(
    status: &Status,
    request: &Watched<String>,
    seen: &mut u64,
    dict: &Watched<Option<T>>,
    what: &str,
    none: &str,
) {
    let g = request.generation();
    if g == *seen {
        return;
    }
    *seen = g;
    let path = request.lock().clone();
    if path.is_empty() {
        return;
    }
    request.replace_quietly(String::new());
    let dict = dict.lock().clone();
    match dict {
        Some(d) => match d.save_npz(Path::new(&path)) {
            Ok(()) => status.say(format!("exported {what} to {path}")),
            Err(e) => status.say(format!("export failed: {e}")),
        },
        None => status.say(format!("export: {none}")),
    }
}

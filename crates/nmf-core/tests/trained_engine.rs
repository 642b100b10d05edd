//! The real-time engine with a trained separator's spatial model and reconstruction
//! templates: no allocation in `process()`, the sources add up to the delayed input, the
//! templates change the masks (and equal ones change nothing), and a model file round-trips.

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use ndarray::Array2;
use nmf_core::dsp::engine::{run_offline, Engine, EngineParams, MAX_SOURCES};
use nmf_core::nmf::{Dictionary, SpectrogramKind};
use nmf_core::trained::{realtime, SeparatorModel, SpatialCovariance};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use realfft::num_complex::Complex32;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

/// A model of 4 sources with random templates, random reconstruction templates and random
/// (full-rank) spatial covariances.
fn random_model(seed: u64) -> SeparatorModel {
    let mut rng = Pcg64::seed_from_u64(seed);
    let (n_fft, k) = (2048, 24);
    let bins = n_fft / 2 + 1;
    let dict = Dictionary {
        w: Array2::from_shape_simple_fn((bins, k), || rng.gen::<f32>() + 0.01),
        sample_rate: 44_100,
        n_fft,
        hop: n_fft / 4,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: (0..k).map(|i| format!("s{}", i / 6)).collect(),
    };
    let reconstruction = dict.w.mapv(|w| w * (0.5 + rng.gen::<f32>()));
    let mut model = SeparatorModel::from_dictionary(dict);
    model.reconstruction = Some(reconstruction);
    model.spatial = Some(
        (0..4)
            .map(|_| {
                let (g0, g1) = (rng.gen::<f32>(), rng.gen::<f32>());
                let mut x = || {
                    Array2::from_shape_simple_fn((bins, 20), || {
                        Complex32::new(rng.gen::<f32>() - 0.5, rng.gen::<f32>() - 0.5)
                    })
                };
                let (a, b) = (x(), x());
                let l = a.mapv(|v| v * g0) + &b.mapv(|v| v * 0.1);
                let r = a.mapv(|v| v * g1);
                SpatialCovariance::estimate(&l, &r)
            })
            .collect(),
    );
    model
}

fn noise(len: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Pcg64::seed_from_u64(seed);
    (0..2)
        .map(|_| (0..len).map(|_| rng.gen::<f32>() * 2.0 - 1.0).collect())
        .collect()
}

#[test]
fn spatial_processing_does_not_allocate() {
    let model = random_model(1);
    let mut e = Engine::new(44_100.0, 2);
    e.set_dictionary(Some(Box::new(realtime::prepare(&model, 2).unwrap())));
    assert!(e.dictionary().unwrap().has_spatial());
    assert!(e.dictionary().unwrap().has_reconstruction());
    let mut main = noise(4096, 2);
    let mut src = vec![vec![vec![0.0f32; 4096]; 2]; MAX_SOURCES];
    let mut m: Vec<&mut [f32]> = main.iter_mut().map(|c| c.as_mut_slice()).collect();
    let mut buses: Vec<Vec<&mut [f32]>> = src
        .iter_mut()
        .map(|b| b.iter_mut().map(|c| c.as_mut_slice()).collect())
        .collect();
    let mut refs: Vec<&mut [&mut [f32]]> = buses.iter_mut().map(|b| b.as_mut_slice()).collect();
    let params = EngineParams::default();
    let other = Box::new(realtime::prepare(&random_model(3), 2).unwrap());
    let mut old = None;
    assert_no_alloc(|| {
        e.set_params(&params);
        for _ in 0..3 {
            e.process(&mut m, &mut refs);
        }
        old = e.set_dictionary(Some(other));
        e.process(&mut m, &mut refs);
        e.reset();
        e.process(&mut m, &mut refs);
    });
    assert!(old.is_some());
}

/// The spatial filters of a bin add up to the identity, so the four buses add up to the
/// input delayed by the latency, and every bus carries sound.
#[test]
fn spatial_sources_add_up_to_the_input() {
    let model = random_model(5);
    let mut e = Engine::new(44_100.0, 2);
    e.set_dictionary(Some(Box::new(realtime::prepare(&model, 2).unwrap())));
    e.set_params(&EngineParams::default());
    let x = noise(30_000, 6);
    let (_, buses) = run_offline(&mut e, &x, 333);
    for c in 0..2 {
        let err = (0..x[c].len())
            .map(|i| (buses.iter().map(|b| b[c][i]).sum::<f32>() - x[c][i]).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-4, "channel {c}: {err}");
    }
    for (s, b) in buses.iter().enumerate() {
        assert!(b[0].iter().any(|v| v.abs() > 1e-3), "source {s} is silent");
    }
    // A mono engine ignores the spatial model (masks).
    assert!(!realtime::prepare(&model, 1).unwrap().has_spatial());
}

#[test]
fn model_file_round_trips_and_plain_dictionaries_load() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(7);
    let path = dir.path().join("m.npz");
    model.save(&path).unwrap();
    assert_eq!(SeparatorModel::load(&path).unwrap(), model);
    let plain = dir.path().join("d.npz");
    model.dictionary.save(&plain).unwrap();
    let loaded = SeparatorModel::load(&plain).unwrap();
    assert_eq!(loaded.dictionary, model.dictionary);
    assert!(loaded.spatial.is_none());
    assert_eq!(loaded.source_names(), ["s0", "s1", "s2", "s3"]);
}

/// Reconstruction templates equal to the dictionary change nothing (bit for bit); other
/// ones change the buses, which still add up to the input, mono and stereo.
#[test]
fn reconstruction_templates_shape_the_masks() {
    let x = noise(20_000, 8);
    let run = |model: &SeparatorModel, channels: usize| {
        let mut e = Engine::new(44_100.0, channels);
        e.set_dictionary(Some(Box::new(realtime::prepare(model, channels).unwrap())));
        e.set_params(&EngineParams::default());
        run_offline(&mut e, &x[..channels], 256).1
    };
    let mut model = random_model(9);
    for channels in [1, 2] {
        let trained = run(&model, channels);
        model.reconstruction = Some(model.dictionary.w.clone());
        let same = run(&model, channels);
        model.reconstruction = None;
        let plain = run(&model, channels);
        assert_eq!(same, plain, "{channels} ch: W~ = W must change nothing");
        let diff = trained
            .iter()
            .zip(&plain)
            .flat_map(|(a, b)| a.iter().zip(b))
            .flat_map(|(a, b)| a.iter().zip(b))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff > 1e-3,
            "{channels} ch: the templates changed nothing ({diff})"
        );
        for c in 0..channels {
            let err = (0..x[c].len())
                .map(|i| (trained.iter().map(|b| b[c][i]).sum::<f32>() - x[c][i]).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-4, "{channels} ch, channel {c}: {err}");
        }
        model = random_model(9);
    }
}

#[test]
fn reconstruction_templates_of_another_shape_are_refused() {
    let mut model = random_model(10);
    model.reconstruction = Some(Array2::ones((3, 3)));
    assert!(model.validate().is_err());
    assert!(realtime::prepare(&model, 2).is_err());
    let mut model = random_model(10);
    model.reconstruction.as_mut().unwrap()[[4, 2]] = f32::NAN;
    assert!(model.validate().is_err());
}

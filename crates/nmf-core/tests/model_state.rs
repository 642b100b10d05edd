//! A trained model read through serde (a project's state) is validated: a sound one
//! round-trips, a damaged one is refused.

use ndarray::Array2;
use nmf_core::nmf::{Dictionary, SpectrogramKind};
use nmf_core::trained::{SeparatorModel, SpatialCovariance};

/// Two sources of 2 templates each at n_fft 512, with reconstruction templates and spatial
/// covariances (one panned left, one diffuse).
fn model() -> SeparatorModel {
    let bins = 257;
    let dict = Dictionary {
        w: Array2::from_shape_fn((bins, 4), |(f, k)| 0.1 + ((f * (k + 1)) % 7) as f32),
        sample_rate: 48_000,
        n_fft: 512,
        hop: 128,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: ["Source 1", "Source 1", "Source 2", "Source 2"]
            .map(String::from)
            .to_vec(),
    };
    let reconstruction = dict.w.mapv(|w| 0.5 * w + 0.01);
    let mut m = SeparatorModel::from_dictionary(dict);
    m.reconstruction = Some(reconstruction);
    m.spatial = Some(vec![
        SpatialCovariance {
            bins: vec![[0.8, 0.2, 0.3, 0.1]; bins],
        },
        SpatialCovariance {
            bins: vec![[0.5, 0.5, 0.0, 0.0]; bins],
        },
    ]);
    m
}

/// A named damage done to a model's JSON.
type Damage = (&'static str, fn(&mut serde_json::Value));

fn parse(json: &serde_json::Value) -> Result<SeparatorModel, serde_json::Error> {
    serde_json::from_value(json.clone())
}

#[test]
fn a_sound_model_round_trips_through_serde() {
    let m = model();
    m.validate().unwrap();
    let back: SeparatorModel = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn a_damaged_model_is_refused() {
    let good = serde_json::to_value(model()).unwrap();
    assert!(parse(&good).is_ok());
    let damaged: [Damage; 7] = [
        ("reconstruction templates of another shape", |j| {
            j["reconstruction"]["cols"] = 2.into();
            j["reconstruction"]["rows"] = 514.into();
        }),
        ("negative reconstruction templates", |j| {
            j["reconstruction"]["data"][7] = (-1.0).into()
        }),
        ("sources differ from the labels", |j| {
            j["settings"]["sources"][1]["name"] = "Drums".into()
        }),
        ("a covariance that is not positive semi-definite", |j| {
            j["spatial"][0]["bins"][3] = serde_json::json!([0.1, 0.1, 0.9, 0.0])
        }),
        ("a negative power", |j| {
            j["spatial"][1]["bins"][0] = serde_json::json!([-0.5, 0.5, 0.0, 0.0])
        }),
        ("a covariance of another bin count", |j| {
            j["spatial"][1]["bins"].as_array_mut().unwrap().pop();
        }),
        ("a negative diffuse floor", |j| {
            j["settings"]["diffuse_floor"] = (-1.0).into()
        }),
    ];
    for (what, damage) in damaged {
        let mut j = good.clone();
        damage(&mut j);
        assert!(parse(&j).is_err(), "{what} was accepted");
    }
    // The dictionary inside is validated too (a 0 Hz dictionary).
    let mut j = good.clone();
    j["dictionary"]["sample_rate"] = 0.into();
    assert!(parse(&j).is_err(), "a 0 Hz dictionary was accepted");
}

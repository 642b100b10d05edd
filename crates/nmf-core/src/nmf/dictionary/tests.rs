use super::*;

fn flat(kind: SpectrogramKind) -> Dictionary {
    Dictionary {
        w: Array2::from_elem((1025, 2), 1.0),
        sample_rate: 44_100,
        n_fft: 2048,
        hop: 512,
        beta: 1.0,
        spectrogram: kind,
        labels: vec!["a".into(), "b".into()],
    }
}

#[test]
fn mapping_moves_bins_scales_levels_and_floors_above_nyquist() {
    let d = flat(SpectrogramKind::Power);
    assert_eq!(d.mapped_to(44_100, 2048).unwrap(), d);
    assert!(d.mapping_note(44_100, 2048).is_none());
    assert_eq!(d.n_fft_for(48_000), 2048);
    assert_eq!(d.n_fft_for(96_000), 4096);
    assert_eq!(d.n_fft_for(22_050), 1024);
    // Twice the rate and twice the frame: same bin width, bins 0..=1024 inside the
    // dictionary's Nyquist, power x4 (sample_rate x n_fft), magnitude x2.
    let m = d.mapped_to(88_200, 4096).unwrap();
    assert_eq!((m.n_bins(), m.hop), (2049, 1024));
    assert!((m.w[[100, 0]] - 4.0).abs() < 1e-5 && (m.w[[1024, 1]] - 4.0).abs() < 1e-5);
    assert!((m.w[[1025, 0]] - 4e-6).abs() < 1e-9, "{}", m.w[[1025, 0]]);
    let mag = flat(SpectrogramKind::Magnitude)
        .mapped_to(88_200, 4096)
        .unwrap();
    assert!((mag.w[[100, 0]] - 2.0).abs() < 1e-5);
    // Twice the rate, same frame: bins above 1024 are beyond the dictionary's Nyquist.
    let up = d.mapped_to(88_200, 2048).unwrap();
    assert!((up.w[[512, 0]] - 2.0).abs() < 1e-5);
    assert!((up.w[[513, 0]] - 2e-6).abs() < 1e-9, "{}", up.w[[513, 0]]);
    assert_eq!(
        up.mapping_note(44_100, 2048).as_deref(),
        Some("learned at 88200 Hz, mapped to 44100 Hz")
    );
    // A peak keeps its place in Hz: bin 100 at 44.1 kHz (2153 Hz) is bin 91.9 at 48 kHz.
    let mut p = flat(SpectrogramKind::Power);
    p.w.fill(0.0);
    p.w[[100, 0]] = 1.0;
    let q = p.mapped_to(48_000, 2048).unwrap();
    let peak = (0..q.n_bins())
        .max_by(|&a, &b| q.w[[a, 0]].total_cmp(&q.w[[b, 0]]))
        .unwrap();
    assert_eq!(peak, 92);
}

#[test]
fn frame_geometry_follows_one_rule() {
    for (n_fft, hop) in [
        (512, 256),
        (2048, 512),
        (2048, 1024),
        (2048, 1),
        (8192, 2048),
    ] {
        let g = FrameGeometry::new(n_fft, hop).unwrap();
        assert_eq!(
            (g.n_fft(), g.hop(), g.n_bins()),
            (n_fft, hop, n_fft / 2 + 1)
        );
        assert_eq!(FFT_SIZES[g.size_index()], n_fft);
    }
    for n_fft in [0, 256, 1000, 16384] {
        assert_eq!(
            FrameGeometry::new(n_fft, 128),
            Err(GeometryError::FftSize(n_fft))
        );
    }
    // `nmfsep learn --hop 500` once wrote such a dictionary, which the plugin refused.
    for hop in [0, 500, 1536, 2048, 4096] {
        assert_eq!(
            FrameGeometry::new(2048, hop),
            Err(GeometryError::Hop { n_fft: 2048, hop })
        );
    }
    assert_eq!(
        FrameGeometry::DEFAULT,
        FrameGeometry::new(2048, 512).unwrap()
    );
}

fn dictionary(labels: &[&str]) -> Dictionary {
    Dictionary {
        w: Array2::from_elem((257, labels.len()), 0.5),
        sample_rate: 44_100,
        n_fft: 512,
        hop: 128,
        beta: 1.0,
        spectrogram: SpectrogramKind::Magnitude,
        labels: labels.iter().map(|l| l.to_string()).collect(),
    }
}

#[test]
fn validation_applies_the_frame_rule() {
    let mut d = dictionary(&["a"]);
    assert!(d.validate().is_ok());
    d.hop = 100;
    let e = d.validate().unwrap_err().to_string();
    assert!(e.contains("hop 100 must divide n_fft 512"), "{e}");
}

#[test]
fn routing_by_label() {
    let d = dictionary(&["piano", "bass", "piano", "drums", "sax", "voice"]);
    assert_eq!(d.source_assignment(4), vec![0, 1, 0, 2, 3, 3]);
    assert_eq!(d.source_assignment(5), vec![0, 1, 0, 2, 3, 4]);
    let d = dictionary(&["Source 3", "Mix", "Mix", "x", "Source 1", "Source 9"]);
    assert_eq!(d.source_assignment(4), vec![2, 0, 1, 0, 0, 1]);
}

#[test]
fn compatibility_names_both_settings() {
    let a = dictionary(&["a"]);
    let mut b = dictionary(&["b"]);
    assert!(a.compatible_with(&b).is_ok());
    b.beta = 2.0;
    let e = a.compatible_with(&b).unwrap_err().to_string();
    assert!(e.contains("beta 1") && e.contains("beta 2"), "{e}");
    assert!(Dictionary::concat(&[a, b]).is_err());
}

#[test]
fn deserializing_validates_and_mapping_refuses_rates_out_of_bounds() {
    let good = flat(SpectrogramKind::Magnitude);
    let json = serde_json::to_value(&good).unwrap();
    let back: Dictionary = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, good);
    for (field, value) in [
        ("sample_rate", serde_json::json!(0)),
        ("sample_rate", serde_json::json!(1)),
        ("hop", serde_json::json!(0)),
        ("n_fft", serde_json::json!(1000)),
        ("labels", serde_json::json!(["a"])),
    ] {
        let mut bad = json.clone();
        bad[field] = value.clone();
        let err = serde_json::from_value::<Dictionary>(bad).unwrap_err();
        assert!(!err.to_string().is_empty(), "{field} = {value}");
    }
    // A dictionary built by hand with a rate out of bounds is refused by the mapping at once
    // (at 0 Hz the ratio of bin widths, and so the work, would be unbounded).
    let mut zero = good.clone();
    zero.sample_rate = 0;
    assert!(zero.for_rate(44_100).is_err());
    assert!(good.mapped_to(0, 2048).is_err());
    assert!(good.mapped_to(*SAMPLE_RATES.end() + 1, 2048).is_err());
}

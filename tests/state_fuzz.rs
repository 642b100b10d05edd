//! Damaged state never takes the plugin down: the bundled CLAP plugin (the
//! `assert_process_allocs` bundle) is handed seeded damaged versions of a saved state (cut
//! short at every byte of the length prefix and at every boundary of the JSON, flipped bytes,
//! huge or short declared lengths, fields of the wrong type, templates that are not finite,
//! negative or of the wrong shape, dictionaries with 0 or 100000 declared components). After
//! each it must keep processing with finite, bounded output, and the dictionary in use must
//! still be the one it had when the damaged state was refused or its dictionary was.
//! Finally the good state is loaded again and separates as before.

mod common;

use common::clap::*;
use common::*;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use serde_json::{json, Value};

/// Bound on any output sample (input peaks below 1, masks at most 1, gains 0 dB).
const OUTPUT_BOUND: f32 = 4.0;

/// Longer than the trainer thread's polling period of the state.
const TRAINER_POLL: std::time::Duration = std::time::Duration::from_millis(30);

/// nice-plug's CLAP state bytes: the JSON's length (u64 LE), then the JSON.
fn framed(json: &[u8]) -> Vec<u8> {
    let mut b = (json.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(json);
    b
}

/// A state whose `dictionary` field holds `dict` (any JSON value, serialized into the
/// field's string as nice-plug persists it) on top of `good`.
fn with_dictionary(good: &Value, dict: Value) -> Vec<u8> {
    let mut s = good.clone();
    s["fields"]["dictionary"] = Value::String(dict.to_string());
    framed(&serde_json::to_vec(&s).unwrap())
}

/// The damaged states, with a name each.
fn cases(good: &Value, rng: &mut Pcg64) -> Vec<(String, Vec<u8>)> {
    let json = serde_json::to_vec(good).unwrap();
    let bytes = framed(&json);
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    // Cut short inside the length prefix and at every boundary of the JSON's structure.
    for n in 0..8 {
        out.push((format!("cut at byte {n}"), bytes[..n].to_vec()));
    }
    // Every boundary of the JSON's structure outside strings (the fields, the parameters),
    // and 40 cuts at random places (inside the dictionary's string among them).
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in json.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if c == b'"' {
            in_string = true;
        } else if matches!(c, b'{' | b'}' | b'[' | b']' | b',' | b':') {
            out.push((format!("cut at JSON byte {i}"), bytes[..8 + i].to_vec()));
        }
    }
    for _ in 0..40 {
        let i = rng.gen_range(0..json.len());
        out.push((
            format!("cut at random JSON byte {i}"),
            bytes[..8 + i].to_vec(),
        ));
    }
    // Flipped bytes.
    for k in 0..60 {
        let mut b = bytes.clone();
        let i = rng.gen_range(8..b.len());
        b[i] ^= 1 << rng.gen_range(0..8);
        out.push((format!("flip {k} at {i}"), b));
    }
    // Declared lengths that lie.
    for (name, len) in [
        ("huge length", u64::MAX),
        ("length + 1000", json.len() as u64 + 1000),
        ("length - 1", json.len() as u64 - 1),
        ("length 0", 0),
    ] {
        let mut b = len.to_le_bytes().to_vec();
        b.extend_from_slice(&json);
        out.push((name.to_string(), b));
    }
    // Wrong types.
    for (name, path, value) in [
        ("fields is a number", "fields", json!(5)),
        ("params is a string", "params", json!("x")),
        ("dictionary is a number", "fields/dictionary", json!(5)),
        ("assignment is a string", "fields/assignment", json!("x")),
        (
            "assignment of strings",
            "fields/assignment",
            json!("[\"a\"]"),
        ),
        (
            "assignment too long",
            "fields/assignment",
            json!("[0,1,2,3,4,5,6,7,8,9]"),
        ),
        ("a gain as a string", "params/gain_1", json!("loud")),
        ("iterations huge", "params/iterations", json!(1e30)),
    ] {
        let mut s = good.clone();
        let mut node = &mut s;
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            node = &mut node[*p];
        }
        node[parts[parts.len() - 1]] = value;
        out.push((name.to_string(), framed(&serde_json::to_vec(&s).unwrap())));
    }
    // Dictionaries that must be refused.
    let dict: Value = serde_json::from_str(good["fields"]["dictionary"].as_str().unwrap()).unwrap();
    let n = dict["w"]["data"].as_array().unwrap().len();
    for (name, change) in [
        ("a null template value", json!({"w": {"data": {"0": null}}})),
        (
            "a negative template value",
            json!({"w": {"data": {"0": -1.0}}}),
        ),
        ("a huge template value", json!({"w": {"data": {"0": 1e39}}})),
        (
            "0 components",
            json!({"w": {"rows": 1025, "cols": 0, "data": []}, "labels": []}),
        ),
        ("100000 declared components", json!({"w": {"cols": 100000}})),
        (
            "data shorter than its shape",
            json!({"w": {"data": "truncate"}}),
        ),
        ("n_fft 1000", json!({"n_fft": 1000})),
        ("hop 0", json!({"hop": 0})),
        ("sample rate 0", json!({"sample_rate": 0})),
        ("beta NaN as a string", json!({"beta": "NaN"})),
        ("labels missing", json!({"labels": null})),
    ] {
        let mut d = dict.clone();
        if let Some(w) = change.get("w") {
            for (k, v) in w.as_object().unwrap() {
                match (k.as_str(), v) {
                    ("data", Value::String(_)) => {
                        d["w"]["data"].as_array_mut().unwrap().truncate(n / 2);
                    }
                    ("data", Value::Object(o)) => {
                        for (i, x) in o {
                            d["w"]["data"][i.parse::<usize>().unwrap()] = x.clone();
                        }
                    }
                    _ => d["w"][k] = v.clone(),
                }
            }
        }
        for (k, v) in change.as_object().unwrap() {
            if k != "w" {
                d[k] = v.clone();
            }
        }
        out.push((name.to_string(), with_dictionary(good, d)));
    }
    out
}

#[test]
fn damaged_states_are_refused_or_repaired_and_audio_goes_on() {
    // nice-plug's logger writes to the file NICE_LOG names (read when the plugin is first
    // loaded, below): a refused state must leave its reason there.
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("plugin.log");
    std::env::set_var("NICE_LOG", &log);
    let log_len = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    // The logger writes from a thread of its own: wait up to a second for a line.
    let logged_since = |before: u64| {
        (0..500).any(|_| {
            let grew = log_len() > before;
            if !grew {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            grew
        })
    };
    let (dict, assignment) = learned(2048);
    let mix = read_wav(&case_dir().join("mix.wav"));
    let input = vec![mix[..4096].to_vec(), mix[..4096].to_vec()];
    let block = 512;
    let mut host = Host::new();
    host.activate(2, block);
    host.load_state(&state_json(dict, assignment));
    let good = host.save_state();
    let mut rng = Pcg64::seed_from_u64(23);
    let cases = cases(&good, &mut rng);
    let (mut refused, mut accepted, mut accepted_logged) = (0, 0, 0);
    for (name, bytes) in &cases {
        let before = log_len();
        let ok = host.load_state_bytes(bytes);
        // Give the trainer thread (which polls the state every few milliseconds) time to see
        // the damaged state before the good one replaces it, so every case reaches it.
        std::thread::sleep(TRAINER_POLL);
        if ok {
            accepted += 1;
            accepted_logged += usize::from(log_len() > before);
        } else {
            refused += 1;
            assert!(
                logged_since(before),
                "{name}: refused without a logged reason"
            );
        }
        let out = host.run(&input, block, &[]);
        for (port, chans) in out.iter().enumerate() {
            for ch in chans {
                assert!(
                    ch.iter().all(|y| y.is_finite() && y.abs() <= OUTPUT_BOUND),
                    "{name}: port {port} output not finite or out of bounds"
                );
            }
        }
        // The dictionary in use is still a valid one: the saved state's dictionary, when it
        // has one, passes the dictionary's own checks.
        if let Some((d, a)) = host.saved_dictionary_lenient() {
            if !ok {
                assert_eq!(&d, dict, "{name}: a refused state changed the dictionary");
                assert_eq!(&a, assignment, "{name}");
            }
        }
        // Back to the good state before the next case.
        assert!(host.load_state_bytes(&framed(&serde_json::to_vec(&good).unwrap())));
    }
    // Damaged dictionary files loaded through `load_path` (the editor's Load): each is
    // refused by the trainer thread, and the dictionary stays.
    let tmp = tempfile::tempdir().unwrap();
    let valid = tmp.path().join("valid.npz");
    dict.save(&valid).unwrap();
    let valid_bytes = std::fs::read(&valid).unwrap();
    let mut nan = dict.clone();
    nan.w[[3, 0]] = f32::NAN;
    let nan_path = tmp.path().join("nan.npz");
    nan.save(&nan_path).unwrap();
    let mut files = vec![nan_path];
    for (name, bytes) in [
        (
            "random.npz",
            (0..5000).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>(),
        ),
        (
            "truncated.npz",
            valid_bytes[..valid_bytes.len() / 2].to_vec(),
        ),
        ("empty.npz", Vec::new()),
    ] {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
    }
    files.push(tmp.path().join("missing.npz"));
    for f in &files {
        let mut s = good.clone();
        s["fields"]["load_path"] =
            Value::String(serde_json::to_string(&f.display().to_string()).unwrap());
        assert!(host.load_state_bytes(&framed(&serde_json::to_vec(&s).unwrap())));
        for _ in 0..20 {
            host.run(&input, block, &[]);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            host.saved_dictionary().map(|(d, _)| d).as_ref(),
            Some(dict),
            "loading {} changed the dictionary",
            f.display()
        );
    }
    println!(
        "{} damaged dictionary files refused through load_path",
        files.len()
    );
    println!(
        "{} damaged states: {refused} refused, each with a logged reason; {accepted} accepted, at least {accepted_logged} of them with a field refused and logged; audio stayed finite and bounded",
        cases.len()
    );
    // The good state still separates: the pass-through property of the main output.
    host.reset();
    let latency = host.latency() as usize;
    let out = host.run_compensated(&input, block, latency, &[]);
    assert!(max_abs_diff(&out[0][0], &input[0]) < 1e-4, "main = input");
    assert_eq!(host.saved_dictionary().map(|(d, _)| d).as_ref(), Some(dict));
}

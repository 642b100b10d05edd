//! The bundled VST3 in a VST3 host of the project's own (on the `vst3` bindings crate): the
//! factory's two classes and their buses, then the piano + bass example through the
//! multi-output class with the source buses active, deactivated with no buffers, deactivated
//! with null channel pointers, and only Source 2 active. Every main output must be the CLAP
//! plugin's main output (the same plugin type, loaded from the .clap), and every active source
//! bus the CLAP's bus, latency aligned.
//!
//! The state holds a dictionary learned from the example's training clips (piano -> Source 1,
//! bass -> Source 2) and `mute_2` on, so the main output is Source 1, not the input.
//!
//! Bundles: `NMFSEP_VST3` / `NMFSEP_CLAP`, or `$CARGO_TARGET_DIR/bundled/NMF Separator.vst3`
//! and `.clap`, built by `cargo xtask bundle nmf-separator --features assert_process_allocs`
//! (debug: any allocation in `process()`, the layer's or nice-plug's, aborts). A missing
//! bundle fails the tests.

mod common;

use std::ffi::CString;

use clack_extensions::state::PluginState;
use clack_host::prelude::*;
use common::clap::padded;
use common::vst3::*;
use common::*;
use nmf_separator::dsp::engine::MAX_SOURCES;
use serde_json::Value;

const OUT_BUSES: usize = 1 + MAX_SOURCES;
/// Seconds of the example's mix processed per run (keeps the test short).
const EXCERPT_SECONDS: f64 = 3.0;
/// VST3 vs CLAP output, absolute (the same code on the same input).
const TOLERANCE: f32 = 1e-6;

// ------------------------------------------------------------------------------------------
// Inputs and the reference

struct Example {
    /// Stereo input: the mix, and the mix at half level.
    input: Vec<Vec<f32>>,
    state: Value,
}

fn example() -> Example {
    let mix = read_wav(&case_dir().join("mix.wav"));
    let n = ((EXCERPT_SECONDS * SR as f64) as usize).min(mix.len());
    let mix = &mix[..n];
    let (dict, assignment) = learned(2048);
    let mut state = state_json(dict, assignment);
    state["params"] = serde_json::json!({"mute_2": {"bool": true}});
    Example {
        input: vec![mix.to_vec(), mix.iter().map(|x| 0.5 * x).collect()],
        state,
    }
}

// ------------------------------------------------------------------------------------------
// The CLAP plugin (the reference)

#[derive(Default)]
struct ClapShared;
impl SharedHandler<'_> for ClapShared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}
struct ClapHost;
impl HostHandlers for ClapHost {
    type Shared<'a> = ClapShared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// The CLAP plugin's five output ports `[port][channel][sample]`, latency-compensated.
fn clap_outputs(ex: &Example, latency: usize) -> Vec<Vec<Vec<f32>>> {
    let path = bundle("NMFSEP_CLAP", "NMF Separator.clap");
    // SAFETY: our own plugin.
    let entry = unsafe { PluginEntry::load(&path) }.expect("cannot load the .clap");
    let info = HostInfo::new(
        "nmf-separator vst3 test",
        "tests",
        "https://example.invalid",
        "1",
    )
    .unwrap();
    let id = CString::new("com.nmf-separator.nmf-separator").unwrap();
    let mut instance =
        PluginInstance::<ClapHost>::new(|_| ClapShared, |_| (), &entry, &id, &info).unwrap();
    let json = serde_json::to_vec(&ex.state).unwrap();
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&json);
    let state: PluginState = instance
        .plugin_shared_handle()
        .get_extension()
        .expect("state extension");
    state
        .load(&instance.plugin_handle(), &mut bytes.as_slice())
        .expect("state load");
    let config = PluginAudioConfiguration {
        sample_rate: SR as f64,
        min_frames_count: 1,
        max_frames_count: BLOCK as u32,
    };
    let stopped = instance.activate(|_, _| (), config).unwrap();
    let mut processor = stopped.start_processing().unwrap();

    let input = padded(&ex.input, latency);
    let len = input[0].len();
    let channels = input.len();
    let mut inbuf = vec![vec![0.0f32; BLOCK]; channels];
    let mut outbuf = vec![vec![vec![0.0f32; BLOCK]; channels]; OUT_BUSES];
    let mut out = vec![vec![Vec::with_capacity(len); channels]; OUT_BUSES];
    let mut in_ports = AudioPorts::with_capacity(channels, 1);
    let mut out_ports = AudioPorts::with_capacity(channels * OUT_BUSES, OUT_BUSES);
    let events = EventBuffer::new();
    let mut out_events = EventBuffer::new();
    let mut start = 0;
    while start < len {
        let n = BLOCK.min(len - start);
        for (d, s) in inbuf.iter_mut().zip(&input) {
            d[..n].copy_from_slice(&s[start..start + n]);
        }
        let inputs = in_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                inbuf
                    .iter_mut()
                    .map(|c| InputChannel::variable(&mut c[..n])),
            ),
        }]);
        let mut outputs =
            out_ports.with_output_buffers(outbuf.iter_mut().map(|port| AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(
                    port.iter_mut().map(|c| &mut c[..n]),
                ),
            }));
        processor
            .process(
                &inputs,
                &mut outputs,
                &events.as_input(),
                &mut out_events.as_output(),
                None,
                None,
            )
            .expect("CLAP process failed");
        for (dst, src) in out.iter_mut().zip(&outbuf) {
            for (d, s) in dst.iter_mut().zip(src) {
                d.extend_from_slice(&s[..n]);
            }
        }
        start += n;
    }
    instance.deactivate(processor.stop_processing());
    for ch in out.iter_mut().flatten() {
        ch.drain(..latency);
    }
    out
}

const MAIN_CID: &[u8; 16] = b"NmfSeparatorVst3";
const MULTI_CID: &[u8; 16] = b"NmfSeparatorMult";

// ------------------------------------------------------------------------------------------
// Tests

#[test]
fn factory_lists_both_classes_and_their_buses() {
    let module = load_module();
    let infos = class_infos(&module);
    let listed: Vec<(String, [u8; 16], String)> = infos
        .iter()
        .map(|i| {
            (
                c_str(&i.name),
                i.cid.map(|b| b as u8),
                c_str(&i.subCategories),
            )
        })
        .collect();
    println!("classes: {listed:?}");
    assert_eq!(
        listed
            .iter()
            .map(|l| (l.0.as_str(), &l.1))
            .collect::<Vec<_>>(),
        [
            ("NMF Separator", MAIN_CID),
            ("NMF Separator Multi-Out", MULTI_CID)
        ]
    );
    assert!(listed.iter().all(|l| l.2 == "Fx|Tools"), "{listed:?}");

    let main = Instance::new(&module, MAIN_CID, None);
    let stereo = |name: &str, bus_type| Bus {
        name: name.into(),
        channels: 2,
        bus_type,
    };
    assert_eq!(main.buses(K_INPUT), [stereo("Input", K_MAIN)]);
    assert_eq!(main.buses(K_OUTPUT), [stereo("Output", K_MAIN)]);

    let multi = Instance::new(&module, MULTI_CID, Some("nmf-separator test host"));
    assert_eq!(multi.buses(K_INPUT), [stereo("Input", K_MAIN)]);
    let mut expected = vec![stereo("Output", K_MAIN)];
    expected.extend((1..=MAX_SOURCES).map(|s| stereo(&format!("Source {s}"), K_AUX)));
    assert_eq!(multi.buses(K_OUTPUT), expected);

    // Studio One greys out kAux outputs: there the source buses are kMain.
    let s1 = Instance::new(&module, MULTI_CID, Some("Studio One"));
    assert!(s1.buses(K_OUTPUT).iter().all(|b| b.bus_type == K_MAIN));

    // The mono layout: mono main and mono sources (uniform counts; see `plugin`'s docs).
    multi.activate(1, OUT_BUSES, &[true; MAX_SOURCES]);
    assert!(multi.buses(K_OUTPUT).iter().all(|b| b.channels == 1));
    assert_eq!(multi.buses(K_INPUT)[0].channels, 1);
}

/// One multi-out run against the CLAP's outputs: main always, sources on active buses.
fn check_case(
    name: &str,
    module: &Module,
    ex: &Example,
    clap: &[Vec<Vec<f32>>],
    latency: usize,
    aux: [Aux; MAX_SOURCES],
) {
    let inst = Instance::new(module, MULTI_CID, None);
    inst.set_state(&ex.state);
    let active = aux.map(|a| a == Aux::Active);
    let reported = inst.activate(2, OUT_BUSES, &active);
    assert_eq!(reported, latency, "{name}: latency");
    let out = run_vst3(&inst, &ex.input, latency, &aux);
    let scale = peak(&ex.input[0]);
    for c in 0..2 {
        let d = max_abs_diff(&out[0][c], &clap[0][c]);
        println!("{name}: main ch{c} vs CLAP: max diff {d:.2e}");
        assert!(
            d < TOLERANCE,
            "{name}: main ch{c} differs from the CLAP's by {d}"
        );
        // Separated: Source 2 is muted, so the main output is not the dry input.
        let dry = max_abs_diff(&out[0][c], &ex.input[c]) / scale;
        let vs_input = si_sdr(&out[0][c], &ex.input[c]);
        println!("{name}: main ch{c} vs input: max diff {dry:.3} of peak, SI-SDR {vs_input:.1} dB");
        assert!(
            dry > 0.1 && vs_input < 15.0,
            "{name}: main ch{c} is the dry input"
        );
        for s in 0..MAX_SOURCES {
            if aux[s] == Aux::Active {
                let d = max_abs_diff(&out[1 + s][c], &clap[1 + s][c]);
                println!("{name}: Source {} ch{c} vs CLAP: max diff {d:.2e}", s + 1);
                assert!(d < TOLERANCE, "{name}: Source {} ch{c}: {d}", s + 1);
            } else {
                assert!(out[1 + s][c].is_empty());
            }
        }
    }
}

#[test]
fn multi_out_separates_whatever_the_host_does_with_the_source_buses() {
    let ex = example();
    let latency = 2048;
    let clap = clap_outputs(&ex, latency);
    // The reference separates: Source 2 (bass) is there and the main output lacks it.
    assert!(peak(&clap[2][0]) > 0.05 * peak(&ex.input[0]));
    let module = load_module();
    use Aux::*;
    check_case("(a) all active", &module, &ex, &clap, latency, [Active; 4]);
    check_case(
        "(b) off, 0 channels",
        &module,
        &ex,
        &clap,
        latency,
        [OffEmpty; 4],
    );
    check_case(
        "(c) off, null pointers",
        &module,
        &ex,
        &clap,
        latency,
        [OffNullArray, OffNullArray, OffNullChannels, OffNullChannels],
    );
    check_case(
        "(d) only Source 2",
        &module,
        &ex,
        &clap,
        latency,
        [OffNullChannels, Active, OffEmpty, OffNullArray],
    );
}

#[test]
fn main_only_class_separates_like_the_clap_main_output() {
    let ex = example();
    let latency = 2048;
    let clap = clap_outputs(&ex, latency);
    let module = load_module();
    let inst = Instance::new(&module, MAIN_CID, None);
    inst.set_state(&ex.state);
    assert_eq!(inst.activate(2, 1, &[]), latency);
    let out = run_vst3(&inst, &ex.input, latency, &[]);
    for c in 0..2 {
        let d = max_abs_diff(&out[0][c], &clap[0][c]);
        println!("main-only: main ch{c} vs CLAP: max diff {d:.2e}");
        assert!(d < TOLERANCE, "main-only ch{c}: {d}");
    }
}

//! `nmfsep separate MIX --model MODEL.npz`: separation with a trained separator file
//! ([`crate::trained::SeparatorModel`]; a plain dictionary file works too), offline or
//! through the plugin's engine with `--realtime`.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::commands::{read_input, realtime_engine};
use super::output::StagedDir;
use super::SeparateArgs;
use crate::audio::write_wav_f32;
use crate::dsp::engine::{run_offline, MAX_SOURCES};
use crate::trained::{self, ModelSeparateOptions, SeparatorModel};

/// Runs `separate --model FILE` (the model file at `path`).
///
/// # Errors
/// Options that do not go with a model, an unreadable model or input, a model trained at
/// another sample rate, or a failed separation.
pub fn separate_model(a: &SeparateArgs, path: &Path) -> Result<()> {
    let t0 = Instant::now();
    if !a.sources.is_empty() || a.rest.is_some() {
        bail!("--model holds the sources: --source and --rest do not go with it");
    }
    if a.plot.is_some() {
        bail!("--plot is not available with --model");
    }
    if a.channels != super::ChannelsArg::Shared {
        bail!("--model fits the channels together; --channels independent does not go with it");
    }
    let model = SeparatorModel::load(path)?;
    let names = model.source_names();
    if a.realtime && names.len() > MAX_SOURCES {
        bail!(
            "--realtime separates at most {MAX_SOURCES} sources, the model has {}",
            names.len()
        );
    }
    let audio = read_input(&a.input)?;
    model
        .dictionary
        .check_matches(audio.sample_rate, model.dictionary.n_fft)
        .with_context(|| format!("{} does not fit {}", path.display(), a.input.display()))?;
    let mut dir = StagedDir::new(&a.output)?;
    let spatial = model.spatial.is_some() && audio.n_channels() == 2;
    let (names, outputs, mode) = if a.realtime {
        let iterations = a
            .iterations
            .unwrap_or(crate::nmf::SolveRule::DEFAULT_ITERATIONS);
        let prepared = trained::realtime::prepare(&model, audio.n_channels())?;
        let mut engine = realtime_engine(a, &audio, prepared, iterations);
        let (_, buses) = run_offline(&mut engine, &audio.channels, a.block);
        let mode = format!(
            "in real-time mode ({iterations} iterations per frame, blocks of {}, latency {} samples compensated)",
            a.block,
            engine.latency_samples()
        );
        (names, buses, mode)
    } else {
        let opts = ModelSeparateOptions {
            iterations: a.iterations.unwrap_or(200),
            spatial: true,
        };
        let sep = trained::separate_with_model(&audio.channels, audio.sample_rate, &model, &opts)?;
        (sep.sources, sep.audio, "offline".to_string())
    };
    for (name, chans) in names.iter().zip(&outputs) {
        write_wav_f32(&dir.file(&format!("{name}.wav")), audio.sample_rate, chans)?;
    }
    dir.commit()?;
    println!(
        "separated {} ({:.1} s, {} Hz, {} ch) {mode} with {}{} into {} -> {} ({:.1} s)",
        a.input.display(),
        audio.duration_s(),
        audio.sample_rate,
        audio.n_channels(),
        path.display(),
        if spatial { " (spatial model)" } else { "" },
        names.join(", "),
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

//! The `nmfsep` command-line tool: argument parsing and the three commands.
//!
//! - `learn`: a dictionary (templates W, n_bins x K) from a clip of one source, saved as .npz;
//! - `separate`: a mixture into the sources of one or more dictionaries (W fixed, H fitted);
//! - `decompose`: unsupervised NMF of a mixture, one output per component or group.
//!
//! # Channels
//! `learn` and `decompose` fit on one spectrogram: the mean over channels of each channel's
//! STFT magnitude (power with `--power`), so a dictionary is independent of the channel
//! count. `separate` by default (`--channels shared`) fits one set of activations H on the
//! mean of the channels' spectrograms and applies the same Wiener masks to every channel
//! (what the real-time engine does; a source keeps its stereo image); `--channels
//! independent` fits H per channel instead. `decompose` always shares H. Outputs keep the
//! input's channel count and sample rate, as 32-bit float WAV, and add up to the input.
//!
//! # Errors
//! Every failure prints one line `nmfsep: error: ...` on stderr, exits with code 1 (2 for
//! usage errors, including size arguments out of the bounds of [`limits`]), and leaves no
//! output file (see [`output`]). Output names follow [`names`]. A damaged input file is used
//! as far as it decodes, with a `nmfsep: warning: ...` line per kind of damage
//! ([`crate::audio::read_audio_checked`]).

pub mod commands;
pub mod evaluate;
pub mod limits;
pub mod model_separate;
pub mod names;
pub mod output;
pub mod resample;
pub mod separate_model;
pub mod train;

use std::path::PathBuf;

use crate::nmf::SolveRule;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The help text on channels, one literal so that `concat!` can join it to others.
macro_rules! channels_help {
    () => {
        "\
Channels: learn and decompose fit the mean over channels of the channels' spectrograms. \
separate --channels shared (default) fits one set of activations on that mean and applies \
the same masks to every channel, like the real-time engine; --channels independent fits \
each channel on its own. Outputs are 32-bit float WAV files with the input's sample rate \
and channel count, and add up to the input."
    };
}

const CHANNELS_HELP: &str = channels_help!();

const SEPARATE_HELP: &str = concat!(
    "\
Examples:
  nmfsep learn piano.wav -o piano.npz
  nmfsep learn bass.wav -o bass.npz
  nmfsep separate mix.wav --source piano=piano.npz --source bass=bass.npz -o out/
  nmfsep separate mix.wav --source noise=noise.npz --rest speech -o out/
  nmfsep separate mix.wav --source piano=piano.npz --source bass=bass.npz --realtime -o out_live/

At least one --source is required unless --rest or --model is given.

",
    channels_help!()
);

/// Sound separation with non-negative matrix factorization (NMF).
#[derive(Parser, Debug)]
#[command(name = "nmfsep", version, about, after_help = CHANNELS_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Learn a dictionary of spectral templates from a clip of one source.
    #[command(after_help = CHANNELS_HELP)]
    Learn(LearnArgs),
    /// Separate a mixture into the sources of one or more dictionaries.
    #[command(after_help = SEPARATE_HELP)]
    Separate(SeparateArgs),
    /// Unsupervised NMF of a mixture: one output per component or per group of components.
    #[command(after_help = CHANNELS_HELP)]
    Decompose(DecomposeArgs),
    /// Score estimates against references with BSS Eval v4 (SDR, ISR, SIR, SAR per window,
    /// as museval), matching files by name.
    Evaluate(EvaluateArgs),
    /// Train a separator from one clip per source (augmented dictionaries, spatial model of
    /// stereo clips) into a model file for `separate --model`.
    Train(train::TrainArgs),
    /// Separation as a web service, with a page: `nmfsep serve --addr 127.0.0.1:8080`.
    Serve(crate::serve::ServeArgs),
}

/// `nmfsep evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Folder of reference sources (NAME.wav, .flac, .mp3, .ogg; one length, one rate).
    pub reference: PathBuf,
    /// Folder of estimates, one NAME.* per reference.
    pub estimate: PathBuf,
    /// Print JSON: {"sources": {NAME: {"median": {...}, "frames": [...]}}}.
    #[arg(long)]
    pub json: bool,
    /// Window length, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub win: f64,
    /// Hop between windows, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub hop: f64,
}

/// Starting point of the fit.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitArg {
    /// Non-negative double SVD, zeros filled with the mean (deterministic given the seed).
    Nndsvda,
    /// Uniform random, from the seed.
    Random,
}

impl From<InitArg> for crate::nmf::Init {
    fn from(i: InitArg) -> Self {
        match i {
            InitArg::Nndsvda => crate::nmf::Init::Nndsvda,
            InitArg::Random => crate::nmf::Init::Random,
        }
    }
}

/// How channels share activations in `separate`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelsArg {
    /// One H from the mean spectrogram of all channels, same masks on every channel.
    Shared,
    /// One H per channel.
    Independent,
}

/// STFT settings.
#[derive(Args, Debug, Clone)]
pub struct StftArgs {
    /// STFT frame length in samples (power of two, 512..8192).
    #[arg(long, default_value_t = 2048, value_parser = limits::n_fft)]
    pub n_fft: usize,
    /// STFT hop in samples: divides n_fft and is at most n_fft/2 (a power of two; the plugin
    /// refuses any other).
    #[arg(long, default_value_t = 512, value_parser = limits::hop)]
    pub hop: usize,
}

/// Settings of an NMF fit that learns W and H.
#[derive(Args, Debug, Clone)]
pub struct FitArgs {
    /// Beta of the divergence: 0 Itakura-Saito, 1 Kullback-Leibler, 2 Euclidean.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub beta: f32,
    /// Maximum number of multiplicative-update iterations (1..10000).
    #[arg(long, default_value_t = 200, value_parser = limits::iterations)]
    pub iterations: usize,
    /// Stop when the decrease of the error sqrt(2 D) (D the cost) between two checks, every
    /// 10 iterations, relative to its initial value, falls below this (scikit-learn's rule).
    /// 0 runs all iterations.
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    /// Seed of the initialization.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Initialization.
    #[arg(long, value_enum, default_value_t = InitArg::Nndsvda)]
    pub init: InitArg,
    /// L1 penalty weight on the activations H (0 = none).
    #[arg(long, default_value_t = 0.0)]
    pub sparsity: f32,
    /// Factorize the power spectrogram |X|^2 instead of the magnitude |X|.
    #[arg(long)]
    pub power: bool,
}

/// `nmfsep learn`.
#[derive(Args, Debug)]
pub struct LearnArgs {
    /// Audio clip of one source (WAV, FLAC, MP3, Ogg Vorbis); channels are mixed down.
    pub input: PathBuf,
    /// Output dictionary (.npz).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Number of components K (templates): 1..4097, and at most the smaller of the clip's
    /// number of frequency bins (n_fft/2+1) and of frames.
    #[arg(short = 'k', long, default_value_t = 16, value_parser = limits::components)]
    pub components: usize,
    /// Source label stored with every component (default: file stem of --output).
    #[arg(long, visible_alias = "name")]
    pub label: Option<String>,
    /// A dictionary of sounds also present in the clip (repeatable): its templates are held
    /// fixed during the fit and the output holds only the new components, which learn what
    /// the given dictionaries do not explain. STFT settings and beta come from the given
    /// dictionaries.
    #[arg(long = "given", value_name = "DICTIONARY.npz")]
    pub given: Vec<PathBuf>,
    #[command(flatten)]
    pub stft: StftArgs,
    #[command(flatten)]
    pub fit: FitArgs,
    /// Also draw W, H and the cost curve into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Threads of the fit (1..=1024; default: every core the system reports). The frame
    /// tiles of each iteration are shared out, with partial sums in a fixed order: the result
    /// is the same bits for every number of threads.
    #[arg(long, value_name = "N", value_parser = limits::threads)]
    pub threads: Option<usize>,
}

/// `nmfsep separate`.
#[derive(Args, Debug)]
pub struct SeparateArgs {
    /// Audio mixture (WAV, FLAC, MP3, Ogg Vorbis).
    pub input: PathBuf,
    /// A source as NAME=DICTIONARY.npz (repeat for each source; at least one unless --rest
    /// is given). All components of the dictionary are labelled NAME; the output is
    /// OUTDIR/NAME.wav.
    #[arg(
        short,
        long = "source",
        value_name = "NAME=PATH",
        required_unless_present_any = ["rest", "model"]
    )]
    pub sources: Vec<String>,
    /// Separate with a trained model instead of dictionaries: a model file from `nmfsep
    /// train` (or a dictionary file), one output per source of the model; or a folder with
    /// separator.json, an Open-Unmix model (as the published umxhq/umxl folders).
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// With an Open-Unmix --model: the targets to separate, comma-separated [default: all in
    /// the folder].
    #[arg(long, value_delimiter = ',', requires = "model")]
    pub targets: Vec<String>,
    /// With an Open-Unmix --model: EM iterations of the multichannel Wiener filter (0 = the
    /// network's magnitudes with the mixture's phase).
    #[arg(long, default_value_t = 1, requires = "model")]
    pub niter: usize,
    /// With an Open-Unmix --model: also output the mixture minus the targets as residual.wav.
    #[arg(long, requires = "model")]
    pub residual: bool,
    /// With an Open-Unmix --model: frames per block of the Wiener filter (0 = whole track).
    #[arg(long, default_value_t = 300, requires = "model")]
    pub wiener_win_len: usize,
    /// With an Open-Unmix --model: start the Wiener filter from ratio masks instead of the
    /// mixture's phase.
    #[arg(long, requires = "model")]
    pub softmask: bool,
    /// Also output everything the sources do not explain as OUTDIR/NAME.wav: free templates
    /// learned from the mixture itself (W of the sources fixed). With no --source, one
    /// output that is the whole input.
    #[arg(long, value_name = "NAME")]
    pub rest: Option<String>,
    /// Number of free templates of the --rest source.
    #[arg(long, default_value_t = 16)]
    pub rest_components: usize,
    /// Weight of the penalty that keeps the rest's templates off the bins the sources
    /// dominate (0 = plain semi-supervised fit).
    #[arg(long, default_value_t = crate::nmf::semi::OVERLAP_WEIGHT)]
    pub rest_overlap: f32,
    /// Iterations of each stage of the rest's residual start (0 = random start): offline
    /// the fit's, with --realtime the worker's first refit.
    #[arg(long, default_value_t = 50, hide = true)]
    pub rest_init_iters: usize,
    /// Exponent p of the tonality scaling of --rest-overlap, offline and with --realtime
    /// (0 = the weight as given).
    #[arg(long, default_value_t = 4.0, hide = true, value_parser = limits::non_negative)]
    pub rest_tonal_exponent: f32,
    /// With --realtime: recent-residual exemplar templates of the --rest source (the
    /// residuals of the last frames, which follow a sound the learned templates have not
    /// seen yet; 0 = learned templates only) [default: 4, or 0 next to a tonal source's
    /// dictionary (notes), whose missing notes the exemplars would carry into the rest].
    #[arg(long)]
    pub rest_exemplars: Option<usize>,
    /// With --realtime: weight of the overlap penalty on the exemplars (they are divided by
    /// 1 + weight * e in the bins the sources dominate).
    #[arg(long, default_value_t = 0.0)]
    pub rest_exemplar_penalty: f32,
    /// With --realtime: frames of the worker's history (its sliding window).
    #[arg(long, default_value_t = 256, hide = true)]
    pub rest_window: usize,
    /// With --realtime: frames between two refits of the worker.
    #[arg(long, default_value_t = 64, hide = true)]
    pub rest_period: usize,
    /// With --realtime: frames between two refits while the worker's window fills (0 =
    /// --rest-period).
    #[arg(long, default_value_t = 32, hide = true)]
    pub rest_early_period: usize,
    /// With --realtime: frames from the end of a refit's data to the frame it applies to.
    #[arg(long, default_value_t = 16, hide = true)]
    pub rest_delay: usize,
    /// With --realtime: multiplicative-update iterations per refit.
    #[arg(long, default_value_t = 5, hide = true)]
    pub rest_refit_iters: usize,
    /// Output folder (created if missing).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Iterations of the activation fit (W fixed) [default: 200, at most 10000; with
    /// --realtime the most per frame: default 16, at most 50].
    #[arg(long, value_parser = limits::iterations)]
    pub iterations: Option<usize>,
    /// Exponent p of the Wiener masks Y_s^p / sum_j Y_j^p on magnitude models (2 = classic).
    #[arg(long, default_value_t = 2.0)]
    pub mask_power: f32,
    /// L1 penalty weight on the activations H.
    #[arg(long, default_value_t = 0.0)]
    pub sparsity: f32,
    /// How channels share activations.
    #[arg(long, value_enum, default_value_t = ChannelsArg::Shared)]
    pub channels: ChannelsArg,
    /// Also draw H, the cost curve and the outputs' spectrograms into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Run the plugin's real-time engine over the file instead of the offline fit: causal,
    /// frame by frame (`--iterations` solver steps per frame, at most, default 16), in host blocks of
    /// `--block` samples; outputs are latency-compensated. At most 4 sources.
    #[arg(long)]
    pub realtime: bool,
    /// Per-frame solver of `--realtime`: `START+STEP[+screen:S][@TOL]` with START warm, flat,
    /// blend:A or adapt:G, STEP mu (multiplicative) or me (majorization-equalization), S the
    /// screening threshold (components below S x max(h) are held after 2 iterations) and TOL
    /// the early exit's relative change of h. The default `flat+me+screen:0.01@0.07` is the
    /// plugin's; `warm+mu` is the rule of version 1 (the plugin's "Solver" parameter).
    #[arg(long, default_value_t = SolveRule::default(), requires = "realtime")]
    pub solver: SolveRule,
    /// Host block size in samples for `--realtime` (1..65536).
    #[arg(long, default_value_t = 512, requires = "realtime", value_parser = limits::block)]
    pub block: usize,
    /// Threads of the offline fit (1..=1024; default: every core the system reports), as
    /// `learn --threads`. Not with --realtime: the real-time engine runs on one thread.
    #[arg(long, value_name = "N", value_parser = limits::threads, conflicts_with = "realtime")]
    pub threads: Option<usize>,
}

/// `nmfsep decompose`.
#[derive(Args, Debug)]
pub struct DecomposeArgs {
    /// Audio mixture (WAV, FLAC, MP3, Ogg Vorbis).
    pub input: PathBuf,
    /// Number of components S: 1..4097, and at most the smaller of the mixture's number of
    /// frequency bins (n_fft/2+1) and of frames.
    #[arg(short = 'k', long, value_parser = limits::components)]
    pub components: usize,
    /// Output folder (created if missing): component_0.wav .. component_{S-1}.wav, or one
    /// file per group.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Groups of components, e.g. "melody=0,2 noise=1" (repeatable). One output NAME.wav per
    /// group; components in no group go to rest.wav.
    #[arg(long = "group", value_name = "NAME=I,J,..")]
    pub groups: Vec<String>,
    /// Exponent p of the Wiener masks on magnitude models.
    #[arg(long, default_value_t = 2.0)]
    pub mask_power: f32,
    #[command(flatten)]
    pub stft: StftArgs,
    #[command(flatten)]
    pub fit: FitArgs,
    /// Also draw W, H, the cost curve and the outputs' spectrograms into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Runs the tool on `std::env::args` and returns the process exit code: 0 success, 1 error,
/// 2 usage error. Errors are printed as one line `nmfsep: error: ...` on stderr.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    }
                }
                _ => {
                    // clap's message, without its usage block, on one line.
                    let text = e.to_string();
                    let body = text
                        .split("\nUsage:")
                        .next()
                        .unwrap_or("")
                        .split("\nFor more information")
                        .next()
                        .unwrap_or("");
                    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
                    let body = body.strip_prefix("error: ").unwrap_or(&body);
                    eprintln!("nmfsep: error: {body} (see nmfsep --help)");
                    2
                }
            };
        }
    };
    // The frame rule ties --hop to --n-fft, which no single argument's parser can check: it is
    // a usage error like any other size out of bounds.
    let stft = match &cli.command {
        Command::Learn(a) => Some(&a.stft),
        Command::Decompose(a) => Some(&a.stft),
        Command::Train(a) => Some(&a.stft),
        Command::Separate(_) | Command::Evaluate(_) | Command::Serve(_) => None,
    };
    if let Some(s) = stft {
        if let Err(e) = crate::nmf::FrameGeometry::new(s.n_fft, s.hop) {
            eprintln!(
                "nmfsep: error: --hop {} with --n-fft {}: {e} (see nmfsep --help)",
                s.hop, s.n_fft
            );
            return 2;
        }
    }
    match commands::run(cli.command) {
        Ok(()) => 0,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("nmfsep: error: {msg}");
            1
        }
    }
}

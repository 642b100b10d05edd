//! `nmfsep`: the command-line tool. Everything lives in [`nmf_separator::cli`].

fn main() {
    std::process::exit(nmf_separator::cli::main());
}

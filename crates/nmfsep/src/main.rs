//! `nmfsep`: the command-line tool. Everything lives in [`nmfsep::cli`].

fn main() {
    std::process::exit(nmfsep::cli::main());
}

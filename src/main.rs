//! The `stylescope` binary: the explorer window by default, subcommands for batch work.

use std::process::ExitCode;

use clap::Parser;
use stylescope::cli::{self, Cli, Command};

fn run() -> anyhow::Result<()> {
    let args = Cli::parse();
    match &args.command {
        Some(Command::Gen(a)) => cli::gen::run(a),
        Some(Command::Info(a)) => cli::info::run(a),
        Some(Command::Convert(a)) => cli::convert::run(a),
        Some(Command::Bench(a)) => cli::bench::run(a),
        Some(Command::Train(a)) => cli::train::run(a),
        Some(Command::Dataset(a)) => cli::dataset::run(a),
        Some(Command::Metrics(a)) => cli::metrics::run(a),
        Some(Command::Spectrum(a)) => cli::spectrum::run(a),
        Some(Command::Video(a)) => cli::video::run(a),
        None => stylescope::gui::run(stylescope::gui::Launch::from_cli(args.network.clone(), args.seed, args.trunc, args.backend)),
    }
}

/// glibc returns every block above its mmap threshold (≤ 32 MiB) to the kernel when freed, and
/// gives each thread its own arena whose heaps cannot hold blocks over 64 MiB. A StyleGAN3 forward
/// pass allocates and frees tensors of tens to hundreds of MiB at every layer, so each one was a
/// fresh `mmap` whose pages the kernel zeroes on first touch: ~40% of a 256² StyleGAN3 image's
/// time on the CPU (`benches/RESULTS.md`). One arena that keeps freed memory makes those
/// allocations reuse pages; peak RSS stays the peak of live tensors (measured: unchanged or lower).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `stylescope convert`: an official snapshot → `.safetensors` with the official state_dict names
//! and a `.json` config beside it (loadable by every command, no pickle needed any more).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::weights::{safetensors, NetworkFile, Which};

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Source network (.pkl snapshot, TensorFlow-era .pkl, .safetensors, or an http(s) URL).
    pub input: PathBuf,
    /// Destination .safetensors (the config goes to the same name with .json).
    pub output: PathBuf,
    /// Which network of the snapshot.
    #[arg(long, value_enum, default_value_t = Which::GEma)]
    pub which: Which,
    /// A sentence saying what the network is (stored in the file; the explorer shows it).
    #[arg(long)]
    pub description: Option<String>,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    if args.output.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        anyhow::bail!("{}: the output must end in .safetensors", args.output.display());
    }
    let input = crate::source::local_path(&args.input.to_string_lossy(), &mut crate::download::terminal_progress())?;
    let mut file = NetworkFile::read(&input, args.which)?;
    if let Some(d) = &args.description {
        file.description = Some(d.clone());
    }
    // Validate before writing: the architecture must build from the kwargs.
    file.validate()?;
    safetensors::write(&file, &args.output).with_context(|| format!("converting {}", args.input.display()))?;
    let n: usize = file.tensors.values().map(|t| t.data.len()).sum();
    println!(
        "wrote {} ({} tensors, {} values) and {}",
        args.output.display(),
        file.tensors.len(),
        n,
        args.output.with_extension("json").display()
    );
    Ok(())
}

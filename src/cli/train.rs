//! `stylescope train`: train.py's command line over the training loop, with a progress bar
//! (kimg, ETA, the last losses) and Ctrl-C finishing with a snapshot.

use std::sync::atomic::Ordering;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::train::options::TrainOptions;
use crate::train::training_loop::Trainer;

use super::{install_sigint, STOP};

pub type TrainArgs = TrainOptions;

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let mut trainer = Trainer::new(args.clone())?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&trainer.opts)?);
        println!("{}", serde_json::to_string_pretty(&trainer.derived)?);
        return Ok(());
    }
    if trainer.opts.metrics != "none" {
        eprintln!("note: --metrics {} is not computed by StyleScope yet; training continues without metrics", trainer.opts.metrics);
    }
    eprintln!("Training in {} (backend {})", trainer.run_dir.display(), trainer.opts.backend.name());
    let total = (trainer.opts.kimg * 1000.0) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} img  {elapsed_precise} ETA {eta}  {msg}")
            .context("progress bar template")?,
    );
    bar.set_position(trainer.progress.cur_nimg);
    let printer = bar.clone();
    // A hidden bar (stderr not a terminal) prints nothing: then the lines go straight to stderr.
    trainer.on_line = Box::new(move |line| if printer.is_hidden() { eprintln!("{line}") } else { printer.println(line) });
    install_sigint();
    // Whatever ends the run is written to its log too, so the window can say why it ended.
    let result = train_to_end(&mut trainer, &bar);
    bar.finish_and_clear();
    match result {
        Ok(true) => {
            let line = format!("Stopped at kimg {:.1}; continue with --resume latest", trainer.progress.cur_nimg as f64 / 1000.0);
            trainer.line(&line);
        }
        Ok(false) => {
            let line = format!("Done: {}", trainer.run_dir.display());
            trainer.line(&line);
        }
        Err(e) => {
            // Into the log only: main prints the error to the console.
            trainer.on_line = Box::new(|_| {});
            trainer.line(&format!("error: {e}"));
            return Err(e.into());
        }
    }
    Ok(())
}

/// Trains to `--kimg`, or until Ctrl-C or a stop request (then `Ok(true)`, after a snapshot).
fn train_to_end(trainer: &mut Trainer, bar: &ProgressBar) -> Result<bool, crate::train::TrainError> {
    trainer.start()?;
    loop {
        if trainer.take_stop_request() {
            STOP.store(true, Ordering::SeqCst);
        }
        let stop = STOP.load(Ordering::SeqCst);
        if trainer.done() && !stop {
            return Ok(false);
        }
        trainer.step(stop)?;
        bar.set_position(trainer.progress.cur_nimg);
        bar.set_message(trainer.last_losses());
        if stop {
            return Ok(true);
        }
    }
}

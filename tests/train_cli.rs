//! `stylescope train` end to end, as a user runs it: a fresh run writes the official files
//! (log, stats.jsonl, reals/fakes grids, snapshots the other commands open); a run stopped and
//! continued with `--resume latest` ends bit-identical to an uninterrupted one; a run killed
//! with SIGKILL resumes from its last complete snapshot; the AVX2 tiles train to the same bits as
//! the default; fine-tuning from a snapshot; one-line
//! errors for bad flags, data and mismatched snapshots.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use stylescope::weights::HostTensor;

/// Runs and expects success → stderr (where the training log goes).
fn run_ok(cmd: &mut Command) -> String {
    run_out(cmd).1
}

/// The small StyleGAN3-T the tests train: 32², few channels, batch 4.
fn train_cmd(outdir: &Path, data: &Path, kimg: &str) -> Command {
    let mut c = bin();
    c.args(["train", "--cfg=stylegan3-t", "--gpus=1", "--batch=4", "--gamma=2", "--cbase=512", "--cmax=16", "--tick=0.004", "--snap=1", "--mirror=1", "--metrics=none"]);
    c.arg(format!("--outdir={}", outdir.display())).arg(format!("--data={}", data.display())).arg(format!("--kimg={kimg}"));
    c
}

fn run_dir(outdir: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(outdir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs.pop().expect("a run folder")
}

fn last_snapshot(dir: &Path) -> PathBuf {
    stylescope::train::training_loop::snapshots(dir).pop().expect("a snapshot")
}

fn snapshot_tensors(path: &Path) -> BTreeMap<String, HostTensor> {
    stylescope::weights::safetensors::read_raw(path).unwrap().0
}

#[test]
fn fresh_run_writes_the_official_files_and_snapshots_other_commands_open() {
    let tmp = ScratchDir::new("train-fresh");
    make_images(&tmp.join("data"), 6, 32);
    let log = run_ok(&mut train_cmd(&tmp.join("runs"), &tmp.join("data"), "0.008"));
    let dir = run_dir(&tmp.join("runs"));
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, "00000-stylegan3-t-data-gpus1-batch4-gamma2");
    for f in ["log.txt", "stats.jsonl", "reals.png", "fakes_init.png", "fakes000000.png", "training_options.json"] {
        assert!(dir.join(f).is_file(), "{f} missing in {name}");
    }
    assert!(log.contains("tick 0"), "{log}");
    // One stats record per tick (ticks at 0, 4 and 8 images), with the losses.
    let stats = std::fs::read_to_string(dir.join("stats.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = stats.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 3, "{stats}");
    for key in ["Loss/G/loss", "Loss/D/loss", "Loss/scores/real", "Progress/kimg", "Timing/Gboth", "Timing/Dmain"] {
        assert!(records[2][key]["mean"].as_f64().unwrap().is_finite(), "{key} in {stats}");
    }
    assert!(records[1]["Loss/r1_penalty"]["mean"].as_f64().is_some() && records[1]["Timing/Dreg"]["num"] == 1.0, "R1 runs at batch 0 only: {stats}");
    assert!(records[2].get("Timing/Dreg").is_none(), "R1 every 16 batches: {stats}");
    let grid = image::open(dir.join("fakes000000.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (32 * 32, 32 * 32));
    // The snapshot opens in gen and info (its G_ema).
    let snap = last_snapshot(&dir);
    let out = tmp.join("gen");
    run_ok(bin().args(["gen", "--network", snap.to_str().unwrap(), "--seeds", "1", "--outdir", out.to_str().unwrap()]));
    assert!(out.join("seed0001.png").is_file());
    run_ok(bin().args(["info", snap.to_str().unwrap()]));
    let tensors = snapshot_tensors(&snap);
    for prefix in ["G/", "D/", "G_ema/", "opt_G/exp_avg/", "opt_D/exp_avg_sq/"] {
        assert!(tensors.keys().any(|k| k.starts_with(prefix)), "snapshot lacks {prefix}*");
    }
}

/// The convolution tiles' AVX2+FMA copy (`STYLESCOPE_SIMD=avx2`: what an AVX2-only CPU runs)
/// trains to the same bits as the default (the AVX-512 copy where this CPU has it).
#[test]
fn avx2_tiles_train_to_the_same_bits() {
    let tmp = ScratchDir::new("train-avx2");
    make_images(&tmp.join("data"), 6, 32);
    run_ok(&mut train_cmd(&tmp.join("a"), &tmp.join("data"), "0.008"));
    run_ok(train_cmd(&tmp.join("b"), &tmp.join("data"), "0.008").env("STYLESCOPE_SIMD", "avx2"));
    let a = snapshot_tensors(&last_snapshot(&run_dir(&tmp.join("a"))));
    let b = snapshot_tensors(&last_snapshot(&run_dir(&tmp.join("b"))));
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        assert!(t == &b[k], "{k} differs between the default and the AVX2 tiles");
    }
}

#[test]
fn resumed_run_is_bit_identical_to_an_uninterrupted_one() {
    let tmp = ScratchDir::new("train-resume");
    make_images(&tmp.join("data"), 6, 32);
    run_ok(&mut train_cmd(&tmp.join("a"), &tmp.join("data"), "0.016"));
    run_ok(&mut train_cmd(&tmp.join("b"), &tmp.join("data"), "0.008"));
    run_ok(train_cmd(&tmp.join("b"), &tmp.join("data"), "0.016").arg("--resume=latest"));
    let a = snapshot_tensors(&last_snapshot(&run_dir(&tmp.join("a"))));
    let (b, meta) = stylescope::weights::safetensors::read_raw(&last_snapshot(&run_dir(&tmp.join("b")))).unwrap();
    assert_eq!(a.len(), b.len());
    for (k, t) in &a {
        assert!(t == &b[k], "{k} differs between the uninterrupted and the resumed run");
    }
    assert_eq!(meta.unwrap().training["progress"]["cur_nimg"], 16);
    // The resumed run continued in the same folder.
    assert_eq!(std::fs::read_dir(tmp.join("b")).unwrap().count(), 1);
}

#[test]
fn sigkill_leaves_a_resumable_run() {
    let tmp = ScratchDir::new("train-kill");
    make_images(&tmp.join("data"), 6, 32);
    let mut child = train_cmd(&tmp.join("runs"), &tmp.join("data"), "1000").stderr(std::process::Stdio::null()).spawn().unwrap();
    let start = std::time::Instant::now();
    loop {
        let dir = std::fs::read_dir(tmp.join("runs")).ok().and_then(|mut d| d.next()).and_then(|e| e.ok()).map(|e| e.path());
        if dir.as_ref().is_some_and(|d| stylescope::train::training_loop::snapshots(d).len() >= 1) {
            break;
        }
        assert!(start.elapsed().as_secs() < 600, "no snapshot after 10 minutes");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Kill at once, possibly mid-write of the next snapshot.
    child.kill().unwrap();
    child.wait().unwrap();
    let dir = run_dir(&tmp.join("runs"));
    let snap = last_snapshot(&dir);
    let before = stylescope::weights::safetensors::read_raw(&snap).unwrap().1.unwrap().training["progress"]["cur_nimg"].as_u64().unwrap();
    let target = (before + 8) as f64 / 1000.0;
    run_ok(train_cmd(&tmp.join("runs"), &tmp.join("data"), &target.to_string()).arg("--resume=latest"));
    let (resumed, meta) = stylescope::weights::safetensors::read_raw(&last_snapshot(&dir)).unwrap();
    assert_eq!(meta.unwrap().training["progress"]["cur_nimg"].as_u64().unwrap(), before + 8);
    // The same weights as a run that was never killed.
    run_ok(&mut train_cmd(&tmp.join("straight"), &tmp.join("data"), &target.to_string()));
    let straight = snapshot_tensors(&last_snapshot(&run_dir(&tmp.join("straight"))));
    assert_eq!(straight.len(), resumed.len());
    for (k, t) in &straight {
        assert!(t == &resumed[k], "{k} differs between the killed-and-resumed and the uninterrupted run");
    }
    // No temporary file is taken for a snapshot.
    assert!(stylescope::train::training_loop::snapshots(&dir).iter().all(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.')));
}

#[test]
fn conditional_frozen_layers_and_gradient_accumulation() {
    let tmp = ScratchDir::new("train-cond");
    let data = tmp.join("data");
    make_images(&data, 6, 32);
    let labels: Vec<serde_json::Value> = (0..6).map(|i| serde_json::json!([format!("img{i:03}.png"), i % 3])).collect();
    std::fs::write(data.join("dataset.json"), serde_json::json!({ "labels": labels }).to_string()).unwrap();
    run_ok(train_cmd(&tmp.join("runs"), &data, "0.008").args(["--cond=1", "--freezed=2", "--batch-gpu=2", "--mbstd-group=2"]));
    let dir = run_dir(&tmp.join("runs"));
    let snaps = stylescope::train::training_loop::snapshots(&dir);
    assert!(!snaps.is_empty());
    let (t, meta) = stylescope::weights::safetensors::read_raw(snaps.last().unwrap()).unwrap();
    let training = meta.unwrap().training;
    assert_eq!(training["derived"]["batch_gpu"], 2);
    // A conditional G and D (three classes).
    assert_eq!(t["G/mapping.embed.weight"].shape, vec![512, 3]);
    assert!(t.contains_key("D/mapping.fc0.weight"));
    // --freezed 2: b32.fromrgb and b32.conv0 get no Adam state; conv1 does.
    for frozen in ["b32.fromrgb.weight", "b32.fromrgb.bias", "b32.conv0.weight", "b32.conv0.bias"] {
        assert!(training["opt_d"]["steps"].get(frozen).is_none(), "{frozen} was trained");
    }
    assert_eq!(training["opt_d"]["steps"]["b32.conv1.weight"], 3, "Dmain twice, Dreg once");
}

#[test]
fn fine_tuning_and_clear_errors() {
    let tmp = ScratchDir::new("train-errors");
    make_images(&tmp.join("data"), 6, 32);
    make_images(&tmp.join("data64"), 4, 64);
    let data = tmp.join("data");
    // Fine-tune from a snapshot of an earlier run: a new run folder, starting from its weights.
    run_ok(&mut train_cmd(&tmp.join("base"), &data, "0.004"));
    let base = last_snapshot(&run_dir(&tmp.join("base")));
    run_ok(train_cmd(&tmp.join("ft"), &data, "0.004").arg(format!("--resume={}", base.display())));
    assert!(last_snapshot(&run_dir(&tmp.join("ft"))).is_file());
    // A snapshot for other images: one line naming the file and both sizes.
    let err = run_err(train_cmd(&tmp.join("x"), &tmp.join("data64"), "0.004").arg(format!("--resume={}", base.display())), "32x32");
    assert!(err.contains(&base.display().to_string()) && err.contains("64x64"), "{err}");
    // An official snapshot with other channel counts.
    let pkl = fixtures().join("sg3t_64.pkl");
    run_err(train_cmd(&tmp.join("x"), &tmp.join("data64"), "0.004").arg(format!("--resume={}", pkl.display())), "shape");
    // A snapshot of another config.
    let r = fixtures().join("sg3r_64.pkl");
    run_err(train_cmd(&tmp.join("x"), &tmp.join("data64"), "0.004").arg(format!("--resume={}", r.display())), "--cfg stylegan3-r");
    let mut two = bin();
    two.args(["train", "--cfg=stylegan3-t", "--gpus=2", "--batch=8", "--gamma=1", "--outdir"]).arg(tmp.join("x")).arg("--data").arg(&data);
    run_err(&mut two, "one device");
    run_err(train_cmd(&tmp.join("x"), &data, "0.004").arg("--resume=latest"), "no run with a snapshot");
    run_err(&mut train_cmd(&tmp.join("x"), &tmp.join("missing"), "0.004"), "missing");
    // A truncated image (valid header) is named before any training starts.
    let bad = tmp.join("bad");
    make_images(&bad, 4, 32);
    let bytes = std::fs::read(bad.join("img001.png")).unwrap();
    std::fs::write(bad.join("img001.png"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(bad.join("notes.txt"), "not an image").unwrap();
    run_err(&mut train_cmd(&tmp.join("x"), &bad, "0.004"), "img001.png");
    assert!(!tmp.join("x").exists() || std::fs::read_dir(tmp.join("x")).unwrap().count() == 0, "no run folder for a run that never started");
}

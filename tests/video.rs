//! `stylescope video` (gen_video.py): frame counts, keyframes byte-identical to `stylescope gen`
//! of their seed, the grid layout and numpy's seed shuffle, GIF frames and delays, and one-line
//! errors for formats and layouts it cannot make.

mod common;

use std::path::Path;

use common::*;

fn gen_png(tmp: &Path, net: &Path, seed: u32) -> image::RgbImage {
    let dir = tmp.join(format!("gen{seed}"));
    run_out(bin().args(["gen", "--network"]).arg(net).args(["--seeds", &seed.to_string(), "--outdir"]).arg(&dir));
    image::open(dir.join(format!("seed{seed:04}.png"))).unwrap().to_rgb8()
}

fn frame(dir: &Path, k: usize) -> image::RgbImage {
    image::open(dir.join(format!("frame{k:06}.png"))).unwrap().to_rgb8()
}

#[test]
fn keyframes_equal_gen_and_the_grid_follows_gen_video() {
    let tmp = ScratchDir::new("video");
    let net = fixtures().join("sg2_64.pkl");
    let out = tmp.join("frames");
    run_out(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "3-6", "--w-frames", "5", "--output"]).arg(&out));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4 * 5);
    for (k, seed) in [3u32, 4, 5, 6].iter().enumerate() {
        assert_eq!(frame(&out, k * 5), gen_png(&tmp, &net, *seed), "keyframe {k} is seed {seed}");
    }
    assert_ne!(frame(&out, 1), frame(&out, 0), "frames between keyframes move");

    // A 2x1 grid of 8 seeds shuffled with seed 5: numpy gives [17 12 14 11 10 15 16 13] for
    // 10..17, so the left cell starts at 17 and the right one at 10 (keyframes 4 per cell).
    let grid = tmp.join("grid");
    run_out(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "10-17", "--grid", "2x1", "--shuffle-seed", "5", "--w-frames", "2", "--output"]).arg(&grid));
    let f0 = frame(&grid, 0);
    assert_eq!((f0.width(), f0.height()), (128, 64));
    let left = image::imageops::crop_imm(&f0, 0, 0, 64, 64).to_image();
    let right = image::imageops::crop_imm(&f0, 64, 0, 64, 64).to_image();
    assert_eq!(left, gen_png(&tmp, &net, 17));
    assert_eq!(right, gen_png(&tmp, &net, 10));
}

#[test]
fn gif_has_every_frame_with_its_delay_and_errors_are_clear() {
    let tmp = ScratchDir::new("video-gif");
    let net = fixtures().join("sg3t_64.pkl");
    for (fps, delay) in [("60", 2u16), ("25", 4)] {
        let out = tmp.join(format!("v{fps}.gif"));
        run_out(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--w-frames", "3", "--fps", fps, "--output"]).arg(&out));
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(std::fs::File::open(&out).unwrap()).unwrap();
        assert_eq!((dec.width(), dec.height()), (64, 64));
        let mut n = 0;
        while let Some(f) = dec.read_next_frame().unwrap() {
            assert_eq!(f.delay, delay);
            n += 1;
        }
        assert_eq!(n, 12);
        assert!(!tmp.join(format!(".v{fps}.gif.partial")).exists());
    }
    run_err(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--output"]).arg(tmp.join("a.mp4")), "MP4 encoding is not built");
    run_err(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--output"]).arg(tmp.join("a.avi")), "unknown video format '.avi'");
    run_err(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-2", "--grid", "2x1", "--output"]).arg(tmp.join("b.gif")), "do not fill a 2x1 grid");
    run_err(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--grid", "2by1", "--output"]).arg(tmp.join("c.gif")), "expected WxH");
}

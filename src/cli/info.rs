//! `stylescope info`: what a network is, and its layer schedule, as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use clap::Args;

use crate::backend::BackendChoice;
use crate::model::config::GeneratorConfig;
use crate::source::{open_generator, OpenedGenerator};
use crate::weights::Which;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Network: .pkl (PyTorch or TensorFlow era), .safetensors, an http(s) URL, or preset:NAME.
    pub network: String,
    /// Which network of a snapshot.
    #[arg(long, value_enum, default_value_t = Which::GEma)]
    pub which: Which,
}

fn count(params: &BTreeMap<String, usize>, prefix: &str) -> usize {
    params.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, n)| n).sum()
}

fn human(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{:.2}M", n as f64 / 1e6)
    } else if n >= 1_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

/// The full report (also used by the GUI's model summary).
pub fn report(opened: &OpenedGenerator) -> String {
    let g = &opened.generator;
    let cfg = &g.config;
    let p = &opened.param_counts;
    let mut s = String::new();
    let total: usize = p.values().sum();
    let family = match cfg {
        GeneratorConfig::StyleGan3(c) if c.use_radial_filters => "StyleGAN3-R",
        GeneratorConfig::StyleGan3(_) => "StyleGAN3-T",
        GeneratorConfig::StyleGan2(_) => "StyleGAN2",
        GeneratorConfig::StyleGan1(_) => "StyleGAN (v1)",
    };
    let _ = writeln!(s, "network     {}{}", opened.origin, if opened.untrained { "  (random weights: untrained)" } else { "" });
    let _ = writeln!(s, "family      {family}");
    let _ = writeln!(s, "resolution  {0}x{0}, {1} channels", cfg.img_resolution(), cfg.img_channels());
    let _ = writeln!(s, "z_dim {}  w_dim {}  c_dim {}  num_ws {}", cfg.z_dim(), cfg.w_dim(), cfg.c_dim(), cfg.num_ws());
    let m = cfg.mapping();
    let _ = writeln!(s, "mapping     {} layers, lr x{}, params {}", m.num_layers, m.lr_multiplier, human(count(p, "mapping.")));
    let _ = writeln!(s, "parameters  {} in total ({total})", human(total));
    let _ = writeln!(s);
    match cfg {
        GeneratorConfig::StyleGan3(c) => {
            let input = c.input_spec();
            let _ = writeln!(
                s,
                "{:<14} {:>11} {:>11} {:>10} {:>19} {:>7} {:>11} {:>9}",
                "layer", "size", "channels", "rate", "cutoff", "up/dn", "taps", "params"
            );
            let _ = writeln!(
                s,
                "{:<14} {:>11} {:>11} {:>10} {:>19} {:>7} {:>11} {:>9}",
                "input",
                format!("{0}x{0}", input.size),
                input.channels,
                input.sampling_rate,
                format!("{:.4}", input.bandwidth),
                "-",
                "-",
                human(count(p, "synthesis.input."))
            );
            for l in c.layers() {
                let _ = writeln!(
                    s,
                    "{:<14} {:>11} {:>11} {:>10} {:>19} {:>7} {:>11} {:>9}",
                    l.name,
                    format!("{}->{}", l.in_size, l.out_size),
                    format!("{}->{}", l.in_channels, l.out_channels),
                    format!("{}/{}", l.in_sampling_rate, l.out_sampling_rate),
                    format!("{:.4}->{:.4}", l.in_cutoff, l.out_cutoff),
                    format!("{}/{}", l.up_factor, l.down_factor),
                    format!("{}/{}{}", l.up_taps, l.down_taps, if l.down_radial { "r" } else { "" }),
                    human(count(p, &format!("synthesis.{}.", l.name)))
                );
            }
        }
        GeneratorConfig::StyleGan2(c) => {
            let _ = writeln!(s, "{:<8} {:>11} {:>13} {:>8} {:>9}", "block", "resolution", "channels", "ws", "params");
            for b in c.blocks() {
                let _ = writeln!(
                    s,
                    "{:<8} {:>11} {:>13} {:>8} {:>9}",
                    b.name,
                    format!("{0}x{0}", b.resolution),
                    format!("{}->{}", b.in_channels, b.out_channels),
                    format!("{}..{}", b.w_index, b.w_index + b.num_conv),
                    human(count(p, &format!("synthesis.{}.", b.name)))
                );
            }
        }
        GeneratorConfig::StyleGan1(c) => {
            let fused = |res: usize| if c.fused_at(res) { "fused" } else { "nearest" };
            let _ = writeln!(s, "{:<16} {:>11} {:>13} {:>4} {:>9} {:>9}", "layer", "resolution", "channels", "w", "upscale", "params");
            let mut res = 4;
            let mut w = 0;
            while res <= c.img_resolution {
                let scopes: [&str; 2] = if res == 4 { ["Const", "Conv"] } else { ["Conv0_up", "Conv1"] };
                for scope in scopes {
                    let cin = if scope == "Conv0_up" { c.channels_at(res / 2) } else { c.channels_at(res) };
                    let _ = writeln!(
                        s,
                        "{:<16} {:>11} {:>13} {:>4} {:>9} {:>9}",
                        format!("{res}x{res}/{scope}"),
                        format!("{0}x{0}", res),
                        format!("{}->{}", cin, c.channels_at(res)),
                        w,
                        if scope == "Conv0_up" { fused(res) } else { "-" },
                        human(count(p, &format!("synthesis/{res}x{res}/{scope}/")))
                    );
                    w += 1;
                }
                res *= 2;
            }
            let _ = writeln!(s, "{:<16} {:>11} {:>13} {:>4} {:>9} {:>9}", "ToRGB_lod0", format!("{0}x{0}", c.img_resolution), format!("{}->{}", c.channels_at(c.img_resolution), c.img_channels), "-", "-", human(count(p, "synthesis/ToRGB_lod0/")));
        }
    }
    s
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let device = BackendChoice::Cpu.device();
    let opened = open_generator(&args.network, args.which, &device)?;
    print!("{}", report(&opened));
    Ok(())
}

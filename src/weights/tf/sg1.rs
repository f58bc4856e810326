//! StyleGAN v1 TensorFlow networks (NVlabs/stylegan `G_style`, `D_basic`) as `model::sg1` reads
//! them. The synthesis and the discriminator keep their TF variable names and layouts (the model
//! is named after the TF layers, so nothing is renamed); the mapping becomes the common
//! `MappingNetwork` (`mapping.fc{i}`, weights transposed): v1 puts the √2 gain inside the weight
//! scale where the later networks apply it after the activation, and as leaky ReLU is positively
//! homogeneous the two agree once the stored bias is divided by √2.

use std::collections::BTreeMap;

use serde_json::json;

use super::{check_common, dense_weight, Converted, TfNetwork};
use crate::weights::HostTensor;

fn check_flag(net: &TfNetwork, key: &str, supported: bool) -> Result<(), String> {
    match net.kwarg(key).and_then(serde_json::Value::as_bool) {
        Some(v) if v != supported => Err(net.fail(format!("{key}={v} (only the official {supported} is supported)"))),
        _ => Ok(()),
    }
}

/// [`check_common`] plus what StyleGAN v1 must be: unconditional, equalised lr, the [1,2,1] blur.
fn check_v1(net: &TfNetwork) -> Result<(), String> {
    check_common(net)?;
    if net.kwarg_usize("label_size", 0) > 0 {
        return Err(net.fail("conditional StyleGAN v1 networks (label_size > 0) are not supported"));
    }
    check_flag(net, "use_wscale", true)?;
    if let Some(blur) = net.kwarg("blur_filter") {
        let taps: Vec<f64> = blur.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect()).unwrap_or_default();
        if taps != [1.0, 2.0, 1.0] {
            return Err(net.fail(format!("blur_filter {blur} (only the official [1, 2, 1] is supported)")));
        }
    }
    Ok(())
}

/// The `fused_scale` kwarg: `true` / `false`, or `null` for `'auto'`.
fn fused_scale(net: &TfNetwork) -> Result<serde_json::Value, String> {
    match net.kwarg("fused_scale") {
        None => Ok(serde_json::Value::Null),
        Some(serde_json::Value::Bool(b)) => Ok(json!(b)),
        Some(serde_json::Value::String(s)) if s == "auto" => Ok(serde_json::Value::Null),
        Some(other) => Err(net.fail(format!("fused_scale {other} (expected true, false or 'auto')"))),
    }
}

/// `G` or `Gs` (`G_style`) → the `stylegan1` generator.
pub fn generator(net: &TfNetwork) -> Result<Converted, String> {
    check_v1(net)?;
    for (key, value) in [("use_noise", true), ("use_pixel_norm", false), ("use_instance_norm", true), ("use_styles", true), ("const_input_layer", true), ("normalize_latents", true)] {
        check_flag(net, key, value)?;
    }
    if net.vars.contains_key("mapping/LabelConcat/weight") {
        return Err(net.fail("conditional StyleGAN v1 networks (LabelConcat) are not supported"));
    }
    let resolution = net.kwarg_usize("resolution", 1024);
    if resolution < 8 || !resolution.is_power_of_two() {
        return Err(net.fail(format!("resolution {resolution}")));
    }
    let w_avg = net.var("dlatent_avg", 1)?;
    let w_dim = w_avg.shape[0];
    let num_layers = (0..).take_while(|i| net.vars.contains_key(&format!("mapping/Dense{i}/weight"))).count();
    if num_layers == 0 {
        return Err(net.fail("no mapping layers (mapping/Dense0/weight)"));
    }
    let dense0 = net.var("mapping/Dense0/weight", 2)?;
    let z_dim = dense0.shape[0];
    let layer_features = if num_layers > 1 { Some(dense0.shape[1]) } else { None };

    let mut tensors = BTreeMap::new();
    tensors.insert("mapping.w_avg".to_string(), w_avg.clone());
    let bias_scale = std::f32::consts::FRAC_1_SQRT_2;
    for i in 0..num_layers {
        let w = net.var(&format!("mapping/Dense{i}/weight"), 2)?;
        let b = net.var(&format!("mapping/Dense{i}/bias"), 1)?;
        tensors.insert(format!("mapping.fc{i}.weight"), dense_weight(w));
        tensors.insert(format!("mapping.fc{i}.bias"), HostTensor { shape: b.shape.clone(), data: b.data.iter().map(|v| v * bias_scale).collect() });
    }

    // The synthesis variables the network uses at lod 0, under their TF names.
    let mut channels = Vec::new();
    let num_ws = 2 * resolution.trailing_zeros() as usize - 2;
    let mut keep = vec!["synthesis/4x4/Const/const".to_string(), "synthesis/ToRGB_lod0/weight".into(), "synthesis/ToRGB_lod0/bias".into()];
    keep.extend((0..num_ws).map(|i| format!("synthesis/noise{i}")));
    let mut res = 4;
    while res <= resolution {
        let layers: &[&str] = if res == 4 { &["Const", "Conv"] } else { &["Conv0_up", "Conv1"] };
        for layer in layers {
            let p = format!("synthesis/{res}x{res}/{layer}");
            if *layer != "Const" {
                keep.push(format!("{p}/weight"));
            }
            for v in ["Noise/weight", "bias", "StyleMod/weight", "StyleMod/bias"] {
                keep.push(format!("{p}/{v}"));
            }
        }
        let conv = if res == 4 { "synthesis/4x4/Conv/weight".to_string() } else { format!("synthesis/{res}x{res}/Conv1/weight") };
        channels.push(net.var(&conv, 4)?.shape[3]);
        res *= 2;
    }
    for key in keep {
        let t = net.vars.get(&key).ok_or_else(|| net.fail(format!("variable '{key}' is missing")))?;
        tensors.insert(key, t.clone());
    }
    let init_kwargs = json!({
        "z_dim": z_dim,
        "w_dim": w_dim,
        "img_resolution": resolution,
        "img_channels": net.kwarg_usize("num_channels", 3),
        "mapping_kwargs": {
            "num_layers": num_layers,
            "layer_features": layer_features,
            "lr_multiplier": net.kwarg("mapping_lrmul").and_then(serde_json::Value::as_f64).unwrap_or(0.01),
            "w_avg_beta": net.kwarg("dlatent_avg_beta").and_then(serde_json::Value::as_f64).unwrap_or(0.995),
        },
        "channels": channels,
        "fused_scale": fused_scale(net)?,
        "tf_format": "StyleGAN (TensorFlow)",
    });
    Ok(Converted { class_name: "G_style".into(), init_kwargs, tensors })
}

/// `D` (`D_basic`) → the `stylegan1` discriminator.
pub fn discriminator(net: &TfNetwork) -> Result<Converted, String> {
    check_v1(net)?;
    let resolution = net.kwarg_usize("resolution", 1024);
    if resolution < 8 || !resolution.is_power_of_two() {
        return Err(net.fail(format!("resolution {resolution}")));
    }
    let mut keep = vec!["FromRGB_lod0/weight".to_string(), "FromRGB_lod0/bias".into()];
    let mut channels = Vec::new();
    let mut res = 4;
    while res <= resolution {
        let layers: &[&str] = if res == 4 { &["Conv", "Dense0", "Dense1"] } else { &["Conv0", "Conv1_down"] };
        for layer in layers {
            keep.push(format!("{res}x{res}/{layer}/weight"));
            keep.push(format!("{res}x{res}/{layer}/bias"));
        }
        let conv = if res == 4 { "4x4/Conv/weight".to_string() } else { format!("{res}x{res}/Conv0/weight") };
        channels.push(net.var(&conv, 4)?.shape[3]);
        res *= 2;
    }
    let dense_features = net.var("4x4/Dense0/weight", 2)?.shape[1];
    let mut tensors = BTreeMap::new();
    for key in keep {
        let t = net.vars.get(&key).ok_or_else(|| net.fail(format!("variable '{key}' is missing")))?;
        tensors.insert(key, t.clone());
    }
    let init_kwargs = json!({
        "img_resolution": resolution,
        "img_channels": net.kwarg_usize("num_channels", 3),
        "channels": channels,
        "dense_features": dense_features,
        "mbstd_group_size": net.kwarg_usize("mbstd_group_size", 4),
        "mbstd_num_features": net.kwarg_usize("mbstd_num_features", 1),
        "fused_scale": fused_scale(net)?,
        "tf_format": "StyleGAN (TensorFlow)",
    });
    Ok(Converted { class_name: "D_basic".into(), init_kwargs, tensors })
}

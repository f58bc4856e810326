//! The explorer's panels, one `_ui` function per section of the official visualizer: model,
//! latent, truncation, style mixing, noise, equivariance, layers, capture, performance; and the
//! image view with latent dragging.

use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints};

use super::state::gen_command;
use super::StyleScopeApp;
use crate::backend::BackendChoice;
use crate::model::config::Family;
use crate::model::NoiseMode;

pub fn controls_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    ui.heading("StyleScope");
    model_ui(app, ui);
    latent_ui(app, ui);
    truncation_ui(app, ui);
    stylemix_ui(app, ui);
    noise_ui(app, ui);
    equivariance_ui(app, ui);
    layers_ui(app, ui);
    capture_ui(app, ui);
    performance_ui(app, ui);
}

fn model_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    egui::CollapsingHeader::new("Model").default_open(true).show(ui, |ui| {
        ui.horizontal(|ui| {
            if ui.button("Open…").clicked() {
                if let Some(p) = rfd::FileDialog::new().add_filter("StyleGAN network", &["pkl", "safetensors"]).pick_file() {
                    app.open_network(p.display().to_string());
                }
            }
            let recent = app.settings.recent.clone();
            egui::ComboBox::from_id_salt("recent").selected_text("Recent").show_ui(ui, |ui| {
                for r in recent {
                    if ui.selectable_label(false, &r).clicked() {
                        app.open_network(r);
                    }
                }
                for p in ["preset:stylegan3-t-256", "preset:stylegan3-r-256", "preset:stylegan2-256"] {
                    if ui.selectable_label(false, p).clicked() {
                        app.open_network(p.to_string());
                    }
                }
            });
        });
        ui.label(egui::RichText::new(&app.settings.network).monospace()).on_hover_text("drop a .pkl or .safetensors on the window to open it");
        let mut backend = app.backend();
        ui.horizontal(|ui| {
            ui.label("Backend");
            ui.selectable_value(&mut backend, BackendChoice::Cpu, "CPU");
            ui.selectable_value(&mut backend, BackendChoice::Wgpu, "wgpu");
        });
        if backend != app.backend() {
            app.settings.backend = Some(backend);
            app.model = None;
        }
        ui.small(app.backend_note());
        match &app.model {
            Some(m) => {
                ui.label(format!("{}  ·  {}", m.device, if m.untrained { "UNTRAINED: random weights" } else { "weights from file" }));
                egui::CollapsingHeader::new("Summary").show(ui, |ui| {
                    ui.label(egui::RichText::new(&m.summary).monospace().size(10.0));
                });
            }
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("loading…");
                });
            }
        }
    });
}

fn latent_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    let c_dim = app.model.as_ref().map_or(0, |m| m.c_dim);
    egui::CollapsingHeader::new("Latent").default_open(true).show(ui, |ui| {
        let l = &mut app.settings.latent;
        let mut seed = l.seed() as i64;
        ui.horizontal(|ui| {
            ui.label("Seed");
            if ui.add(egui::DragValue::new(&mut seed).range(0..=u32::MAX as i64)).changed() {
                // Keep the fractional offset; the seed itself lives on the x axis.
                let (fx, fy) = (l.x - l.x.round(), l.y - l.y.round());
                l.x = seed as f64 + fx;
                l.y = fy;
            }
        });
        ui.horizontal(|ui| {
            ui.label("x");
            ui.add(egui::DragValue::new(&mut l.x).speed(0.01).fixed_decimals(2));
            ui.label("y");
            ui.add(egui::DragValue::new(&mut l.y).speed(0.01).fixed_decimals(2));
        });
        ui.horizontal(|ui| {
            ui.checkbox(&mut app.settings.anim_latent, "Anim");
            ui.add(egui::Slider::new(&mut app.settings.anim_speed, -5.0..=5.0).text("speed"));
        });
        ui.horizontal(|ui| {
            if ui.button("Snap").clicked() {
                let l = &mut app.settings.latent;
                l.x = l.x.round();
                l.y = l.y.round();
            }
            if ui.button("Reset").clicked() {
                let l = &mut app.settings.latent;
                l.x = 0.0;
                l.y = 0.0;
                app.settings.anim_latent = false;
            }
        });
        if c_dim > 0 {
            let l = &mut app.settings.latent;
            ui.horizontal(|ui| {
                ui.label("Class");
                let text = l.class.map_or("per seed (random)".to_string(), |c| c.to_string());
                egui::ComboBox::from_id_salt("class").selected_text(text).show_ui(ui, |ui| {
                    ui.selectable_value(&mut l.class, None, "per seed (random)");
                    for c in 0..c_dim {
                        ui.selectable_value(&mut l.class, Some(c), c.to_string());
                    }
                });
            });
        }
    });
}

fn truncation_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    let num_ws = app.model.as_ref().map_or(16, |m| m.num_ws);
    egui::CollapsingHeader::new("Truncation").default_open(true).show(ui, |ui| {
        let l = &mut app.settings.latent;
        ui.add(egui::Slider::new(&mut l.psi, -1.0..=2.0).text("psi"));
        let mut cutoff = l.cutoff.unwrap_or(num_ws).min(num_ws);
        if ui.add(egui::Slider::new(&mut cutoff, 0..=num_ws).text("cutoff")).changed() {
            l.cutoff = if cutoff >= num_ws { None } else { Some(cutoff) };
        }
        if ui.button("Reset truncation").clicked() {
            l.psi = 1.0;
            l.cutoff = None;
        }
    });
}

fn stylemix_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    let num_ws = app.model.as_ref().map_or(0, |m| m.num_ws);
    egui::CollapsingHeader::new("Style mixing").default_open(true).show(ui, |ui| {
        let l = &mut app.settings.latent;
        ui.horizontal(|ui| {
            ui.label("Mix seed");
            ui.add(egui::DragValue::new(&mut l.stylemix_seed));
        });
        ui.horizontal_wrapped(|ui| {
            for i in 0..num_ws {
                let mut on = l.stylemix.contains(&i);
                if ui.checkbox(&mut on, format!("w{i}")).changed() {
                    if on {
                        l.stylemix.push(i);
                        l.stylemix.sort_unstable();
                    } else {
                        l.stylemix.retain(|&j| j != i);
                    }
                }
            }
        });
        if ui.button("Reset mixing").clicked() {
            l.stylemix.clear();
        }
    });
}

fn noise_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    let sg2 = app.model.as_ref().is_some_and(|m| m.family == Family::StyleGan2);
    egui::CollapsingHeader::new("Noise").default_open(false).show(ui, |ui| {
        ui.add_enabled_ui(sg2, |ui| {
            let n = &mut app.settings.latent.noise;
            ui.horizontal(|ui| {
                ui.selectable_value(&mut n.mode, NoiseMode::Const, "const");
                ui.selectable_value(&mut n.mode, NoiseMode::Random, "random");
                ui.selectable_value(&mut n.mode, NoiseMode::None, "none");
            });
            ui.horizontal(|ui| {
                ui.label("Noise seed");
                ui.add(egui::DragValue::new(&mut n.seed));
            });
            ui.add(egui::Slider::new(&mut n.gain, 0.0..=4.0).text("strength x"));
        });
        if !sg2 {
            ui.small("StyleGAN3 has no noise inputs (the official network ignores noise_mode).");
        }
    });
}

fn equivariance_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    let sg3 = app.model.as_ref().is_some_and(|m| m.family == Family::StyleGan3);
    egui::CollapsingHeader::new("Equivariance").default_open(true).show(ui, |ui| {
        ui.add_enabled_ui(sg3, |ui| {
            let s = &mut app.settings;
            ui.horizontal(|ui| {
                ui.label("Translate");
                ui.add(egui::DragValue::new(&mut s.latent.translate.0).speed(0.002).fixed_decimals(4));
                ui.add(egui::DragValue::new(&mut s.latent.translate.1).speed(0.002).fixed_decimals(4));
            });
            ui.horizontal(|ui| {
                ui.checkbox(&mut s.anim_translate, "Anim");
                ui.checkbox(&mut s.round_translate, "Round to pixels");
            });
            ui.horizontal(|ui| {
                ui.label("Rotate (turns)");
                ui.add(egui::DragValue::new(&mut s.latent.rotate_turns).speed(0.001).fixed_decimals(4));
                ui.checkbox(&mut s.anim_rotate, "Anim");
            });
            ui.add(egui::Slider::new(&mut s.anim_eq_speed, 0.0..=1.0).text("anim speed"));
            if ui.button("Reset transform").clicked() {
                s.latent.translate = (0.0, 0.0);
                s.latent.rotate_turns = 0.0;
                s.anim_translate = false;
                s.anim_rotate = false;
            }
        });
        if !sg3 {
            ui.small("Only StyleGAN3 has transformable Fourier input features.");
        }
    });
}

fn layers_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    egui::CollapsingHeader::new("Layers & channels").default_open(false).show(ui, |ui| {
        let Some(model) = &app.model else { return };
        let v = &mut app.settings.view;
        let current = v.layer.clone().unwrap_or_else(|| "output".into());
        egui::ComboBox::from_id_salt("layer").selected_text(&current).width(220.0).show_ui(ui, |ui| {
            ui.selectable_value(&mut v.layer, None, "output (image)");
            for (name, [c, h, w]) in &model.layers {
                ui.selectable_value(&mut v.layer, Some(name.clone()), format!("{name}  {h}x{w}  {c}ch"));
            }
        });
        let channels = v.layer.as_ref().and_then(|l| model.layers.iter().find(|(n, _)| n == l)).map_or(3, |(_, s)| s[0]);
        ui.horizontal(|ui| {
            ui.checkbox(&mut v.rgb, "RGB");
            ui.checkbox(&mut v.normalize, "Normalize");
        });
        ui.add(egui::Slider::new(&mut v.base_channel, 0..=channels.saturating_sub(1)).text("channel"));
        ui.add(egui::Slider::new(&mut v.gain_db, -40.0..=40.0).text("gain dB"));
        if let Some(f) = &app.frame {
            ui.monospace(format!("mean {:+.4}  std {:.4}  max|x| {:.4}", f.stats.mean, f.stats.std, f.stats.max_abs));
        }
    });
}

fn capture_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    egui::CollapsingHeader::new("Capture").default_open(false).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(app.settings.capture_dir.display().to_string());
            if ui.button("Folder…").clicked() {
                if let Some(d) = rfd::FileDialog::new().pick_folder() {
                    app.settings.capture_dir = d;
                }
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Save image").clicked() {
                app.message = Some(match save_capture(app) {
                    Ok(p) => format!("saved {p}"),
                    Err(e) => format!("capture failed: {e}"),
                });
            }
            if ui.button("Save window").clicked() {
                let inbox = app.screenshots.clone();
                let ctx = ui.ctx().clone();
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::ScreenshotCallback::new(move |img| {
                    if let Ok(mut v) = inbox.lock() {
                        v.push(img);
                    }
                    ctx.request_repaint();
                })));
            }
            if ui.button("Copy as command").clicked() {
                let c_dim = app.model.as_ref().map_or(0, |m| m.c_dim);
                let sg3 = app.model.as_ref().is_some_and(|m| m.family == Family::StyleGan3);
                app.message = Some(match gen_command(&app.settings, c_dim, sg3) {
                    Ok(cmd) => {
                        ui.ctx().copy_text(cmd.clone());
                        format!("copied: {cmd}")
                    }
                    Err(why) => format!("no exact command: {why}"),
                });
            }
        });
        save_window_screenshots(app, ui);
    });
}

/// Writes the shown frame at full resolution as the next `NNNNN.png` in the capture folder.
fn save_capture(app: &StyleScopeApp) -> Result<String, String> {
    let f = app.frame.as_ref().ok_or("nothing rendered yet")?;
    let path = next_capture_path(&app.settings.capture_dir)?;
    let rgb: Vec<u8> = f.rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    crate::export::save_png(&path, &rgb, 3, f.height, f.width).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

fn next_capture_path(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let max = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.split('.').next().and_then(|s| s.parse::<u32>().ok())))
        .max()
        .unwrap_or(0);
    Ok(dir.join(format!("{:05}.png", max + 1)))
}

fn save_window_screenshots(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    let _ = ui;
    let shots: Vec<std::sync::Arc<egui::ColorImage>> = match app.screenshots.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(_) => Vec::new(),
    };
    for img in shots {
        let result = next_capture_path(&app.settings.capture_dir).and_then(|path| {
            let [w, h] = img.size;
            let rgb: Vec<u8> = img.pixels.iter().flat_map(|c| [c.r(), c.g(), c.b()]).collect();
            crate::export::save_png(&path, &rgb, 3, h, w).map_err(|e| e.to_string())?;
            Ok(path.display().to_string())
        });
        app.message = Some(match result {
            Ok(p) => format!("saved window {p}"),
            Err(e) => format!("window capture failed: {e}"),
        });
    }
}

fn performance_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    egui::CollapsingHeader::new("Performance").default_open(false).show(ui, |ui| {
        let last = app.render_history().back().copied().unwrap_or(0.0);
        let gui = app.gui_history().back().copied().unwrap_or(0.0);
        ui.label(format!("render {last:.1} ms ({:.1} FPS)   GUI {gui:.1} ms", if last > 0.0 { 1000.0 / last } else { 0.0 }));
        let pts: PlotPoints = app.render_history().iter().enumerate().map(|(i, v)| [i as f64, *v]).collect();
        Plot::new("render_ms").height(80.0).show_axes([false, true]).show(ui, |p| p.line(Line::new("render ms", pts)));
        ui.add(egui::Slider::new(&mut app.settings.fps_cap, 5.0..=240.0).text("FPS cap"));
    });
}

/// The rendered image, centred, integer-zoomed when it fits; dragging moves the latent.
pub fn image_ui(app: &mut StyleScopeApp, ui: &mut egui::Ui) {
    let avail = ui.available_size();
    if let Some(tex) = app.texture() {
        let size = tex.size_vec2();
        let scale = (avail.x / size.x).min((avail.y - 40.0) / size.y);
        let scale = if scale >= 1.0 { scale.floor() } else { scale };
        let img = egui::Image::new(tex).fit_to_exact_size(size * scale).sense(egui::Sense::drag());
        let resp = ui.vertical_centered(|ui| ui.add(img)).inner;
        if resp.dragged() {
            let d = resp.drag_delta();
            app.settings.latent.x -= d.x as f64 * 0.01;
            app.settings.latent.y -= d.y as f64 * 0.01;
        }
        let mut lines = Vec::new();
        if let Some(f) = &app.frame {
            lines.push(format!("seed {}  ({:.2}, {:.2})  {}x{}  {:.0} ms", app.settings.latent.seed(), app.settings.latent.x, app.settings.latent.y, f.width, f.height, f.render_ms));
        }
        ui.vertical_centered(|ui| {
            for l in lines {
                ui.small(l);
            }
        });
    } else if app.error.is_none() {
        ui.centered_and_justified(|ui| ui.spinner());
    }
    if let Some(e) = &app.error {
        ui.colored_label(egui::Color32::from_rgb(255, 120, 100), format!("Error: {e}"));
    }
    if let Some(m) = &app.message {
        ui.small(m);
    }
}

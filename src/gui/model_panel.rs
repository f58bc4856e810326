//! Model: the network field (path, URL or `preset:NAME`), open dialog, drag-and-drop hint, recent
//! list, backend choice, and the model summary (`stylescope info`'s text).

use egui::{RichText, Ui};

use super::{DialogPurpose, ExplorerApp};
use crate::backend::BackendChoice;

pub fn model_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    ui.horizontal(|ui| {
        let label = ui.label("Network");
        let r = ui.add(egui::TextEdit::singleline(&mut app.network_text).desired_width(ui.available_width() - 60.0)).labelled_by(label.id);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Load").clicked() || enter {
            let text = app.network_text.clone();
            app.open_network(&text);
        }
    });
    ui.horizontal(|ui| {
        let browsing = app.dialog.is_some();
        if ui.add_enabled(!browsing, egui::Button::new("Open…")).on_hover_text(".pkl snapshot or .safetensors").clicked() {
            app.start_dialog(DialogPurpose::OpenNetwork);
        }
        let mut pick = None;
        let label = ui.label("Recent");
        let combo = egui::ComboBox::from_id_salt("recent").selected_text("pick…").show_ui(ui, |ui| {
            if app.settings.recent.is_empty() {
                ui.weak("(none yet)");
            }
            for r in &app.settings.recent {
                if ui.selectable_label(false, r).clicked() {
                    pick = Some(r.clone());
                }
            }
            ui.separator();
            for preset in super::PRESETS {
                if ui.selectable_label(false, preset).on_hover_text("official architecture with random weights (untrained)").clicked() {
                    pick = Some(preset.to_string());
                }
            }
        });
        combo.response.labelled_by(label.id);
        if let Some(p) = pick {
            app.open_network(&p);
        }
    });
    ui.weak("…or drop a .pkl / .safetensors file on the window, or paste an https:// URL (downloaded once into the cache).");
    ui.horizontal(|ui| {
        let label = ui.label("Backend");
        let current = app.settings.backend;
        let auto = format!("auto ({})", app.default_backend.name());
        let text = match current {
            None => auto.clone(),
            Some(b) => b.name().to_string(),
        };
        egui::ComboBox::from_id_salt("backend")
            .selected_text(text)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut app.settings.backend, None, auto);
                ui.selectable_value(&mut app.settings.backend, Some(BackendChoice::Cpu), "cpu");
                ui.selectable_value(&mut app.settings.backend, Some(BackendChoice::Wgpu), "wgpu");
            })
            .response
            .labelled_by(label.id);
    });
    ui.weak(&app.backend_note);
    if let Some(n) = &app.loading {
        ui.label(format!("loading {n} …"));
        if let Some((done, total)) = app.download {
            let mb = |b: u64| b as f64 / 1e6;
            let bar = match total {
                Some(t) if t > 0 => egui::ProgressBar::new(done as f32 / t as f32).text(format!("downloading {:.1} / {:.1} MB", mb(done), mb(t))),
                _ => egui::ProgressBar::new(0.0).text(format!("downloading {:.1} MB", mb(done))),
            };
            ui.add(bar);
        }
    }
    let Some(m) = &app.model else {
        return;
    };
    if m.untrained {
        ui.label(RichText::new("UNTRAINED: official architecture with random weights — not a trained model").color(ui.visuals().warn_fg_color).strong());
    }
    if let Some(d) = &m.description {
        ui.label(RichText::new(d).strong());
    }
    ui.label(format!("{} · {}x{} · z {} · w {} · {} ws{}", m.family_name(), m.resolution, m.resolution, m.z_dim, m.w_dim, m.num_ws, if m.c_dim > 0 { format!(" · {} classes", m.c_dim) } else { String::new() }));
    ui.weak(format!("running on {}", m.device));
    egui::CollapsingHeader::new("Summary").default_open(false).show(ui, |ui| {
        egui::ScrollArea::both().id_salt("summary").max_height(220.0).show(ui, |ui| {
            ui.monospace(&m.summary);
        });
    });
}

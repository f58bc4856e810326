//! Layer inspector ("Layers & channels"): pick any traced layer, show 3 channels as RGB or one as
//! grey, normalise, gain in dB, per-layer statistics, and the power-spectrum (FFT) view.

use egui::{DragValue, Grid, Slider, Ui};

use super::ExplorerApp;

pub fn layers_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let view = &mut app.settings.view;
    if app.layers.is_empty() {
        ui.weak("(the layer list appears after the first render)");
    }
    egui::ScrollArea::vertical().id_salt("layer_list").max_height(180.0).show(ui, |ui| {
        Grid::new("layers").striped(true).num_columns(3).show(ui, |ui| {
            ui.selectable_value(&mut view.layer, None, "output (image)");
            ui.label("");
            ui.label("");
            ui.end_row();
            for l in &app.layers {
                let [c, h, w] = l.shape;
                let selected = view.layer.as_deref() == Some(l.name.as_str());
                if ui.selectable_label(selected, &l.name).clicked() {
                    view.layer = Some(l.name.clone());
                }
                ui.weak(format!("{h}x{w}"));
                ui.weak(format!("{c} ch"));
                ui.end_row();
            }
        });
    });
    // Channels of the selected layer (from the layer list, so the value survives until its
    // first frame arrives).
    let channels = match &view.layer {
        Some(name) => app.layers.iter().find(|l| &l.name == name).map(|l| l.shape[0]),
        None => Some(3),
    }
    .or_else(|| app.frame.as_ref().map(|f| f.channels))
    .unwrap_or(3);
    ui.horizontal(|ui| {
        ui.checkbox(&mut view.rgb, "RGB").on_hover_text("3 consecutive channels as RGB, else one as grey");
        ui.checkbox(&mut view.normalize, "Normalize").on_hover_text("divide each channel by its max |x|");
    });
    ui.horizontal(|ui| {
        let label = ui.label("Channel");
        if ui.small_button("−").clicked() {
            view.base_channel = view.base_channel.saturating_sub(1);
        }
        ui.add(DragValue::new(&mut view.base_channel).range(0..=channels.saturating_sub(1)).clamp_existing_to_range(false).speed(0.1))
            .labelled_by(label.id);
        if ui.small_button("+").clicked() {
            view.base_channel = (view.base_channel + 1).min(channels.saturating_sub(1));
        }
        ui.weak(format!("of {channels}"));
    });
    ui.horizontal(|ui| {
        let label = ui.label("Gain");
        ui.add(Slider::new(&mut view.gain_db, -40.0..=40.0).suffix(" dB").fixed_decimals(1)).labelled_by(label.id);
        if ui.small_button("0").clicked() {
            view.gain_db = 0.0;
        }
    });
    if let Some(f) = &app.frame {
        Grid::new("stats").num_columns(4).striped(true).show(ui, |ui| {
            ui.label("");
            ui.strong("mean");
            ui.strong("std");
            ui.strong("max |x|");
            ui.end_row();
            for (name, st) in [("all channels", &f.stats_all), (&*format!("shown ({}..{})", f.base_channel, f.base_channel + f.shown_channels), &f.stats_shown)] {
                ui.label(name);
                ui.monospace(format!("{:+.4}", st.mean));
                ui.monospace(format!("{:.4}", st.std));
                ui.monospace(format!("{:.4}", st.max_abs));
                ui.end_row();
            }
        });
    }
    ui.separator();
    ui.horizontal(|ui| {
        ui.checkbox(&mut view.fft, "FFT").on_hover_text("windowed power spectrum, shown beside the image");
        ui.add_enabled(view.fft, egui::Checkbox::new(&mut view.fft_all_channels, "All channels"));
    });
    ui.add_enabled_ui(view.fft, |ui| {
        ui.add(Slider::new(&mut view.fft_range_db, 1.0..=100.0).text("range ±dB"));
        ui.add(Slider::new(&mut view.fft_beta, 0.0..=20.0).text("Kaiser beta"));
    });
    if ui.button("Reset view").clicked() {
        *view = Default::default();
    }
}

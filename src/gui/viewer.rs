//! The result area and the status bar: the last good frame drawn centered (integer zoom when it
//! fits, nearest-neighbour), the FFT beside it, errors over it, and dragging anywhere in the area
//! moves the latent — as in the visualizer.

use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Ui, Vec2};

use super::latent_panel::DRAG_PER_POINT;
use super::ExplorerApp;

pub fn image_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let area = ui.available_rect_before_wrap();
    let response = ui.allocate_rect(area, Sense::drag());
    if response.dragged() {
        let d = response.drag_delta();
        app.settings.latent.x += d.x as f64 * DRAG_PER_POINT;
        app.settings.latent.y += d.y as f64 * DRAG_PER_POINT;
    }
    let painter = ui.painter_at(area);
    if let (Some(tex), Some(f)) = (app.frame_texture(), &app.frame) {
        let panes = if app.fft_texture.is_some() { 2.0 } else { 1.0 };
        let (w, h) = (f.width as f32, f.height as f32);
        let fit = ((area.width() - 8.0) / (w * panes)).min((area.height() - 8.0) / h).max(1e-3);
        // Integer zoom when the image fits at least once, like the visualizer.
        let zoom = if fit >= 1.0 { fit.floor() } else { fit };
        let size = Vec2::new(w * zoom, h * zoom);
        let total = Vec2::new(size.x * panes, size.y);
        let origin = area.center() - total / 2.0;
        let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        painter.image(tex, Rect::from_min_size(origin, size), uv, Color32::WHITE);
        if let Some(fft) = &app.fft_texture {
            painter.image(fft.id(), Rect::from_min_size(origin + Vec2::new(size.x, 0.0), size), uv, Color32::WHITE);
        }
    } else {
        let text = match (&app.loading, &app.error) {
            (Some(n), _) => format!("Loading {n} …"),
            (None, Some(_)) => String::new(),
            (None, None) if app.backend() == crate::backend::BackendChoice::Wgpu => {
                "Rendering the first frame … (wgpu compiles its shaders first: seconds on a GPU, longer on software Vulkan)".to_string()
            }
            (None, None) => "Rendering the first frame …".to_string(),
        };
        painter.text(area.center(), Align2::CENTER_CENTER, text, FontId::proportional(18.0), ui.visuals().weak_text_color());
    }
    if app.is_busy() || app.loading.is_some() {
        // A static marker, not an animated spinner: a spinner repaints every frame, which on a
        // software renderer steals the CPU the render thread needs. The last frame stays.
        let text = if app.loading.is_some() { "loading…" } else { "rendering…" };
        painter.text(area.right_top() + Vec2::new(-10.0, 8.0), Align2::RIGHT_TOP, text, FontId::proportional(14.0), ui.visuals().weak_text_color());
    }
    if let Some(err) = app.error.clone() {
        let r = Rect::from_min_size(area.left_top() + Vec2::new(12.0, 12.0), Vec2::new((area.width() - 24.0).max(100.0), 0.0));
        let mut dismiss = false;
        ui.scope_builder(egui::UiBuilder::new().max_rect(r), |ui| {
            egui::Frame::popup(ui.style()).fill(Color32::from_rgb(90, 20, 20)).show(ui, |ui| {
                ui.label(RichText::new(&err).color(Color32::WHITE));
                dismiss = ui.button("Dismiss").clicked();
            });
        });
        if dismiss {
            app.error = None;
        }
    }
}

pub fn status_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    ui.horizontal(|ui| {
        match &app.model {
            Some(m) => {
                ui.label(RichText::new(&m.device).strong()).on_hover_text(&app.backend_note);
                ui.separator();
                let name = std::path::Path::new(&m.origin).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| m.origin.clone());
                ui.label(format!("{name} ({})", m.family_name()));
                if m.untrained {
                    ui.label(RichText::new("untrained: random weights").color(ui.visuals().warn_fg_color));
                }
            }
            None => {
                ui.label(format!("backend: {}", app.backend().name())).on_hover_text(&app.backend_note);
            }
        }
        if let Some(f) = &app.frame {
            ui.separator();
            ui.label(format!("seed {} · {}x{} · {:.1} ms", f.request.latent.seed(), f.width, f.height, f.render_ms));
        }
        if let Some(m) = app.messages.last() {
            ui.separator();
            let color = if m.is_error { ui.visuals().error_fg_color } else { ui.visuals().weak_text_color() };
            ui.label(RichText::new(&m.text).color(color)).on_hover_ui(|ui| {
                for m in app.messages.iter().rev().take(10) {
                    ui.label(&m.text);
                }
            });
        }
    });
}

//! Capture: save the rendered image (PNG, full network resolution, the official uint8 rule) or
//! the whole window into an output folder, save/open a view, and "copy as command" — the
//! `stylescope gen` line that writes the same image.

use std::path::{Path, PathBuf};

use egui::Ui;

use super::{state, DialogPurpose, ExplorerApp};
use crate::export::{quantize_chw, save_png};

pub fn capture_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    ui.horizontal(|ui| {
        let label = ui.label("Folder");
        let mut text = app.settings.capture_dir.display().to_string();
        if ui.add(egui::TextEdit::singleline(&mut text).desired_width(ui.available_width() - 70.0)).labelled_by(label.id).changed() {
            app.settings.capture_dir = PathBuf::from(text);
        }
        if ui.add_enabled(app.dialog.is_none(), egui::Button::new("Choose…")).clicked() {
            app.start_dialog(DialogPurpose::CaptureDir);
        }
    });
    ui.horizontal(|ui| {
        if ui.add_enabled(app.frame.is_some(), egui::Button::new("Save image")).on_hover_text("the rendered image at full resolution").clicked() {
            match save_image(app) {
                Ok(p) => app.report(format!("saved {}", p.display())),
                Err(e) => app.report_error(format!("cannot save the image: {e}")),
            }
        }
        if ui.button("Save window").clicked() {
            match next_capture_path(&app.settings.capture_dir) {
                Ok(p) => app.pending_window_capture = Some(p),
                Err(e) => app.report_error(format!("cannot save the window: {e}")),
            }
        }
    });
    ui.horizontal(|ui| {
        if ui.add_enabled(app.dialog.is_none(), egui::Button::new("Save view…")).on_hover_text("every control, as a .ron file").clicked() {
            app.start_dialog(DialogPurpose::SaveView);
        }
        if ui.add_enabled(app.dialog.is_none(), egui::Button::new("Open view…")).clicked() {
            app.start_dialog(DialogPurpose::OpenView);
        }
    });
    ui.separator();
    let command = match &app.model {
        Some(m) => state::gen_command(&app.settings, m, app.backend()),
        None => Err("no model loaded".to_string()),
    };
    match command {
        Ok(cmd) => {
            if ui.button("Copy as command").on_hover_text("the `stylescope gen` line that writes this image").clicked() {
                ui.ctx().copy_text(cmd.clone());
                app.report("command copied to the clipboard".into());
            }
            let mut shown = cmd;
            ui.add(egui::TextEdit::multiline(&mut shown).code_editor().desired_rows(2).desired_width(f32::INFINITY));
        }
        Err(why) => {
            ui.add_enabled(false, egui::Button::new("Copy as command"));
            ui.weak(format!("not reproducible by `stylescope gen`: {why}"));
        }
    }
}

/// `{dir}/{id:05}.png` with id = 1 + the largest numeric prefix already there (the visualizer's rule).
pub fn next_capture_path(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let max = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let digits: String = name.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0);
    Ok(dir.join(format!("{:05}.png", max + 1)))
}

/// Writes the frame on screen: the network output with gen_images.py's conversion when it is
/// shown, else the shown layer's pixels.
fn save_image(app: &ExplorerApp) -> Result<PathBuf, String> {
    let f = app.frame.as_ref().ok_or("nothing rendered yet")?;
    let path = next_capture_path(&app.settings.capture_dir)?;
    // Read back from the GPU here when the frame stayed there.
    let (hwc, c) = match (&f.output, f.request.view.normalize || f.request.view.gain_db != 0.0) {
        (Some(out), false) if f.channels == 3 || f.channels == 1 => (quantize_chw(&out.get()?, f.channels, f.height, f.width), f.channels),
        _ => (f.rgba.get()?.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(), 3),
    };
    save_png(&path, &hwc, c, f.height, f.width).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Asks the integration for a screenshot of the window and writes it to `path` (creating the
/// folder); with `then_close`, closes the window afterwards (documentation screenshots).
pub fn request_window_png(ctx: &egui::Context, path: PathBuf, then_close: bool) {
    let closer = ctx.clone();
    ctx.request_screenshot(move |image| {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let [w, h] = image.size;
        let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
        let result = image::save_buffer_with_format(&path, &rgba, w as u32, h as u32, image::ExtendedColorType::Rgba8, image::ImageFormat::Png);
        match result {
            Ok(()) => eprintln!("saved window screenshot {}", path.display()),
            Err(e) => eprintln!("cannot save window screenshot {}: {e}", path.display()),
        }
        if then_close {
            closer.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        closer.request_repaint();
    });
}

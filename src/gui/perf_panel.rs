//! Performance: render time and FPS of the worker and of the GUI, a small plot of both, and the
//! GUI frame-rate cap used while animating.

use egui::{Slider, Ui};
use egui_plot::{Legend, Line, Plot};

use super::ExplorerApp;

fn mean_ms(q: &std::collections::VecDeque<(f64, f64)>, n: usize) -> Option<f64> {
    let take: Vec<f64> = q.iter().rev().take(n).map(|(_, ms)| *ms).collect();
    (!take.is_empty()).then(|| take.iter().sum::<f64>() / take.len() as f64)
}

pub fn perf_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let render = mean_ms(&app.perf.render_ms, 10);
    let gui = mean_ms(&app.perf.frame_ms, 30);
    let interval = mean_ms(&app.perf.frame_interval_ms, 30).filter(|&ms| ms > 0.0);
    egui::Grid::new("perf").num_columns(3).show(ui, |ui| {
        ui.label("Render").on_hover_text("the render thread: latent composition, synthesis, pixels");
        ui.monospace(render.map(|ms| format!("{ms:8.1} ms")).unwrap_or_else(|| "      – ms".into()));
        ui.monospace(render.filter(|&ms| ms > 0.0).map(|ms| format!("{:6.1} FPS", 1000.0 / ms)).unwrap_or_default());
        ui.end_row();
        ui.label("GUI").on_hover_text("time spent building one window frame");
        ui.monospace(gui.map(|ms| format!("{ms:8.1} ms")).unwrap_or_else(|| "      – ms".into()));
        ui.monospace(interval.map(|ms| format!("{:6.1} FPS", 1000.0 / ms)).unwrap_or_default())
            .on_hover_text("frames drawn per second (the window only redraws when something changes)");
        ui.end_row();
    });
    let render_pts: Vec<[f64; 2]> = app.perf.render_ms.iter().map(|&(t, ms)| [t, ms]).collect();
    let gui_pts: Vec<[f64; 2]> = app.perf.frame_ms.iter().map(|&(t, ms)| [t, ms]).collect();
    Plot::new("perf_plot").height(90.0).legend(Legend::default()).allow_scroll(false).allow_zoom(false).allow_drag(false).show(ui, |p| {
        p.line(Line::new("render ms", render_pts));
        p.line(Line::new("GUI ms", gui_pts));
    });
    ui.horizontal(|ui| {
        let label = ui.label("FPS limit");
        ui.add(Slider::new(&mut app.settings.fps_cap, 5.0..=1000.0).logarithmic(true).fixed_decimals(0)).labelled_by(label.id);
    });
}

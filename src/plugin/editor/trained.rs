//! The trained separator panel: the "trained" badge (and whether it separates now), the
//! training's progress with Cancel, the training switch, and the export of the model file.

use super::*;

/// What the panel shows of the persisted model.
struct ModelView {
    sources: Vec<String>,
    components: usize,
    spatial: bool,
}

impl SeparatorApp {
    pub(super) fn trained_panel(&mut self, ui: &mut egui::Ui) {
        let p = self.params.clone();
        let model = p.model.lock().as_ref().map(|m| ModelView {
            sources: m.source_names(),
            components: m.dictionary.n_components(),
            spatial: m.spatial.is_some(),
        });
        ui.group(|ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(RichText::new("Trained separator").strong());
                if model.is_some() && !self.status.training.load(Ordering::Acquire) {
                    ui.label(
                        RichText::new(" trained ")
                            .strong()
                            .color(Color32::BLACK)
                            .background_color(Color32::from_rgb(110, 200, 110)),
                    );
                }
            });
            if self.status.training.load(Ordering::Acquire) {
                ui.horizontal(|ui| {
                    let progress = self.status.progress.load(Ordering::Acquire);
                    ui.add(
                        egui::ProgressBar::new(progress)
                            .desired_width(ui.available_width() - 80.0)
                            .text(format!("training {:.0}%", progress * 100.0)),
                    );
                    if ui.button("Cancel").clicked() {
                        self.status.cancel.store(true, Ordering::Release);
                    }
                });
                ui.label(
                    RichText::new("The plain dictionaries separate meanwhile.")
                        .small()
                        .color(ui.visuals().weak_text_color()),
                );
            } else if let Some(m) = &model {
                let in_use = self.status.model_in_use.load(Ordering::Acquire);
                ui.label(format!(
                    "{} ({} comp.{}){}",
                    m.sources.join(", "),
                    m.components,
                    if m.spatial { ", stereo image" } else { "" },
                    if in_use {
                        ""
                    } else {
                        ": not in use (a source is off or learned live, or another rate)"
                    }
                ));
            } else {
                ui.label(
                    RichText::new(
                        "Capture two or more sources, each alone, and wait for the badge.",
                    )
                    .color(ui.visuals().weak_text_color()),
                );
            }
            let old = p.learn.lock().clone();
            let mut s = old.clone();
            ui.checkbox(&mut s.train_separator, "Train from the captures")
                .on_hover_text(
                    "Once two or more sources are captured alone, train a separator from \
                     their clips in the background (pitch-shifted copies of tonal sources; \
                     the stereo image of stereo captures)",
                );
            if s != old {
                p.learn.set_external(s);
            }
            ui.horizontal(|ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut self.model_path)
                        .desired_width(ui.available_width() - 70.0)
                        .hint_text("/path/to/model.npz"),
                );
                let path = self.model_path.trim().to_string();
                if ui
                    .add_enabled(
                        model.is_some() && !path.is_empty(),
                        egui::Button::new("Export"),
                    )
                    .on_hover_text("Write the model file (nmfsep separate --model reads it)")
                    .clicked()
                {
                    p.model_export_path.set_external(path);
                }
            });
        });
    }
}

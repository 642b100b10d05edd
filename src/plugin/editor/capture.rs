//! The capture panel: target, Capture / Stop, the input meter, captured seconds, learning progress with Cancel.

use super::*;

impl SeparatorApp {
    pub(super) fn capture_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        let labels = p.source_labels.lock().clone();
        ui.group(|ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new("Capture").strong());
            let target = p.capture_target.value();
            let capturing = p.capture.value();
            ui.horizontal_wrapped(|ui| {
                ui.label("Target");
                for (i, t) in [
                    CaptureTarget::Source1,
                    CaptureTarget::Source2,
                    CaptureTarget::Source3,
                    CaptureTarget::Source4,
                    CaptureTarget::WholeMix,
                ]
                .into_iter()
                .enumerate()
                {
                    let name = if i < MAX_SOURCES {
                        labels.name(i)
                    } else {
                        "Whole mix".to_string()
                    };
                    let mut text = RichText::new(name);
                    if i < MAX_SOURCES {
                        text = text.color(source_color(&labels, i));
                    }
                    let r = ui.add_enabled(!capturing, egui::Button::selectable(target == t, text));
                    if r.clicked() && target != t {
                        set_param(setter, &p.capture_target, t);
                    }
                }
            });
            ui.horizontal(|ui| {
                let (label, color) = if capturing {
                    ("Stop and learn", Color32::from_rgb(240, 80, 70))
                } else {
                    ("Capture", ui.visuals().text_color())
                };
                let learning = self.status.learning.load(Ordering::Acquire);
                let button = egui::Button::new(RichText::new(label).color(color).strong())
                    .min_size(Vec2::new(130.0, 26.0));
                if ui.add_enabled(capturing || !learning, button).clicked() {
                    set_param(setter, &p.capture, !capturing);
                }
                let sr = self.feed.sample_rate();
                let len = self.status.capture_len.load(Ordering::Acquire);
                let secs = seconds(len, sr);
                if capturing {
                    self.last_capture_s = secs;
                }
                ui.label(format!(
                    "{:.1} s / {:.0} s",
                    if capturing { secs } else { self.last_capture_s },
                    CAPTURE_SECONDS
                ));
            });
            self.meter(ui);
            if self.status.learning.load(Ordering::Acquire) {
                ui.horizontal(|ui| {
                    let progress = self.status.progress.load(Ordering::Acquire);
                    ui.add(
                        egui::ProgressBar::new(progress)
                            .desired_width(ui.available_width() - 80.0)
                            .text(format!("learning {:.0}%", progress * 100.0)),
                    );
                    if ui.button("Cancel").clicked() {
                        self.status.cancel.store(true, Ordering::Release);
                    }
                });
            } else {
                let n = self.status.clips_learned.load(Ordering::Acquire);
                ui.label(format!("Clips learned: {n}"));
            }
        });
    }

    pub(super) fn meter(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("Input");
            let width = ui.available_width() - 70.0;
            let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 14.0), Sense::hover());
            let painter = ui.painter();
            painter.rect_filled(rect, CornerRadius::same(2), Color32::from_gray(30));
            let x = |db: f32| rect.left() + rect.width() * ((db + 60.0) / 60.0).clamp(0.0, 1.0);
            let fill = Rect::from_min_max(rect.min, Pos2::new(x(self.meter_db), rect.max.y));
            let color = if self.meter_db > -1.0 {
                Color32::from_rgb(230, 70, 60)
            } else if self.meter_db > -12.0 {
                Color32::from_rgb(230, 200, 60)
            } else {
                Color32::from_rgb(90, 200, 110)
            };
            painter.rect_filled(fill, CornerRadius::same(2), color);
            let hx = x(self.meter_hold_db);
            painter.line_segment(
                [Pos2::new(hx, rect.top()), Pos2::new(hx, rect.bottom())],
                Stroke::new(1.5, Color32::WHITE),
            );
            ui.label(if self.meter_db <= -89.0 {
                "-inf dB".to_string()
            } else {
                format!("{:.1} dB", self.meter_db)
            });
        });
    }
}

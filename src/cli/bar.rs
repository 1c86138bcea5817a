//! The progress bar on a terminal (binary-only): drawn from the progress events with
//! `indicatif` when standard error is a terminal, and a log writer that lifts the bar while
//! a line is written, so bar and log never garble each other. It must hold no sync logic.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mwsync::events::{Event, Events};
use mwsync::progress::{duration, thousands};

/// The bar being drawn, if any; shared by the drawing task and the log writer.
#[derive(Clone, Default)]
pub struct Bar(Arc<Mutex<Option<ProgressBar>>>);

static BAR: OnceLock<Bar> = OnceLock::new();

/// The process's bar slot.
pub fn global() -> &'static Bar {
    BAR.get_or_init(Bar::default)
}

impl Bar {
    fn current(&self) -> Option<ProgressBar> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, bar: Option<ProgressBar>) {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        *slot = bar;
    }
}

/// Draws the bar from `events` until the bus closes. Call only when stderr is a terminal.
pub fn draw(events: &Events) -> tokio::task::JoinHandle<()> {
    let mut rx = events.subscribe();
    let bar = global().clone();
    tokio::spawn(async move {
        loop {
            let item = match rx.recv().await {
                Ok(item) => item,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            match &item.event {
                Event::Progress {
                    kind,
                    table,
                    done,
                    total,
                    per_sec,
                    eta_secs,
                } => {
                    let pb = bar.current().unwrap_or_else(|| {
                        let pb = ProgressBar::with_draw_target(
                            Some(*total),
                            ProgressDrawTarget::stderr(),
                        );
                        pb.set_style(
                            ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len}")
                                .expect("a fixed, valid template")
                                .progress_chars("=> "),
                        );
                        bar.set(Some(pb.clone()));
                        pb
                    });
                    pb.set_length(*total);
                    pb.set_position(*done);
                    let left = eta_secs
                        .map_or_else(String::new, |s| format!(", about {} left", duration(s)));
                    pb.set_message(format!(
                        "{} of {table}: {} records/s{left}",
                        kind.words(),
                        thousands(*per_sec)
                    ));
                    if done >= total {
                        bar.set(None);
                    }
                }
                Event::Activity { .. } | Event::CycleFinished { .. } | Event::Fatal { .. } => {
                    bar.set(None)
                }
                _ => {}
            }
        }
        bar.set(None);
    })
}

/// A log line's writer: collects the line, then writes it to stderr with the bar lifted.
pub struct LineWriter {
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.line);
        let write = || {
            let _ = std::io::stderr().write_all(&line);
        };
        match global().current() {
            Some(pb) => pb.suspend(write),
            None => write(),
        }
    }
}

/// The `MakeWriter` for tracing: one [`LineWriter`] per log line.
pub fn make_writer() -> LineWriter {
    LineWriter { line: Vec::new() }
}

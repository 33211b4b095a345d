//! Progress reporting for `models fetch`: the [`FetchProgress`] trait, a console
//! implementation on an indicatif bar ([`ConsoleProgress`]) and a silent one
//! ([`SilentProgress`]).
//!
//! Invariant: progress is advisory — implementations never fail and never block the fetch.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Receives what a fetch is doing.
pub trait FetchProgress {
    /// A new step ("downloading onnxruntime 1.31.1 with pip", "verifying isnet").
    fn stage(&self, msg: &str);
    /// Bytes done in the current step; `total` when known (None: just alive).
    fn bytes(&self, done: u64, total: Option<u64>);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentProgress;

impl FetchProgress for SilentProgress {
    fn stage(&self, _msg: &str) {}
    fn bytes(&self, _done: u64, _total: Option<u64>) {}
}

/// A bar (or spinner) on stderr; when stderr is not a terminal, stage lines only.
pub struct ConsoleProgress {
    bar: ProgressBar,
}

impl ConsoleProgress {
    pub fn new() -> ConsoleProgress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(spinner_style());
        bar.enable_steady_tick(Duration::from_millis(120));
        ConsoleProgress { bar }
    }
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        ConsoleProgress::new()
    }
}

impl Drop for ConsoleProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl FetchProgress for ConsoleProgress {
    fn stage(&self, msg: &str) {
        if self.bar.is_hidden() {
            eprintln!("{msg}");
        } else {
            self.bar.println(msg);
        }
        self.bar.set_length(0);
        self.bar.set_position(0);
        self.bar.set_style(spinner_style());
        self.bar.set_message(msg.to_string());
    }

    fn bytes(&self, done: u64, total: Option<u64>) {
        match total {
            Some(total) => {
                if self.bar.length() != Some(total) {
                    self.bar.set_style(bar_style());
                    self.bar.set_length(total);
                }
                self.bar.set_position(done);
            }
            None => self.bar.tick(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_progress_accepts_any_sequence() {
        let p = ConsoleProgress {
            bar: ProgressBar::hidden(),
        };
        p.stage("step");
        p.bytes(0, None);
        p.bytes(5, Some(10));
        p.bytes(10, Some(10));
        p.stage("next");
        assert_eq!(p.bar.length(), Some(0));
        SilentProgress.stage("x");
    }
}

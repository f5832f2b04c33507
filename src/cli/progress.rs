//! Progress bars for long work: drawn on a terminal's stderr, silent when stderr is a pipe or file.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting events up to `total`; hidden unless stderr is a terminal (indicatif checks).
pub fn events_bar(total: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message);
    bar
}

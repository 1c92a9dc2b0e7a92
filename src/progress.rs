//! Progress bars for long work (decoding, training epochs). They draw on stderr and hide
//! themselves when stderr is not a terminal (logs, tests).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items with a rate in `unit`/s, an ETA and a free-form message.
pub fn bar(len: u64, unit: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let template =
        format!("{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}} {{msg}}");
    let style = ProgressStyle::with_template(&template)
        .expect("the template is valid")
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style)
}

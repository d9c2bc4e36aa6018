//! Everything the binary prints goes through here: control characters from evidence are
//! shown, not obeyed (see `towerwatch_report::terminal_safe`), and a closed pipe (`| head`)
//! ends the output quietly instead of panicking.

use std::io::Write;

fn write(mut w: impl Write, text: &str) {
    let safe = towerwatch_report::terminal_safe(text);
    match w.write_all(safe.as_bytes()).and_then(|_| w.flush()) {
        Ok(()) => {}
        // The reader went away: nothing more to say to it.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(_) => {}
    }
}

pub fn out(text: &str) {
    write(std::io::stdout().lock(), text);
}

pub fn err(text: &str) {
    write(std::io::stderr().lock(), text);
}

/// `print!`, made safe.
macro_rules! say {
    ($($t:tt)*) => { $crate::term::out(&format!($($t)*)) };
}

/// `println!`, made safe.
macro_rules! sayln {
    () => { $crate::term::out("\n") };
    ($($t:tt)*) => { $crate::term::out(&format!("{}\n", format_args!($($t)*))) };
}

/// `eprint!`, made safe.
macro_rules! complain {
    ($($t:tt)*) => { $crate::term::err(&format!($($t)*)) };
}

/// `eprintln!`, made safe.
macro_rules! complainln {
    ($($t:tt)*) => { $crate::term::err(&format!("{}\n", format_args!($($t)*))) };
}

pub(crate) use {complain, complainln, say, sayln};

/// A progress bar over the inputs' bytes on a terminal; hidden otherwise or when quiet.
pub fn progress_bar(enabled: bool, inputs: &[towerwatch_sources::Input]) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let total = inputs
        .iter()
        .map(towerwatch_hunt::pipeline::input_bytes)
        .sum();
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

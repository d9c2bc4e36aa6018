//! Reading many inputs in parallel, delivering each input's result in input order.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use sha2::{Digest, Sha256};
use towerwatch_event::Event;
use towerwatch_sources::{read_input, Input, InputReport, ReadOptions, SourceError};

/// Rejected records kept per input for the summary (all are counted).
pub const KEPT_ERRORS: usize = 20;

#[derive(Clone, Default)]
pub struct Options {
    pub threads: Option<usize>,
    pub strict: bool,
    /// Compute each input file's SHA-256 (for the run manifest).
    pub hash: bool,
    /// How configurable text layouts are read (log_line_prefix, access log format), and the
    /// flag that stops reading (a signal).
    pub read: ReadOptions,
}

/// Told the bytes of each input as it is read (a progress bar).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// What one input gave.
pub struct Done<L> {
    pub report: InputReport,
    pub local: L,
    /// The first rejected records, with their positions.
    pub errors: Vec<SourceError>,
    pub sha256: Option<String>,
}

/// The size of an input file before it is read (the progress bar's total).
pub fn input_bytes(input: &Input) -> u64 {
    match input {
        Input::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
        Input::Stdin => 0,
    }
}

/// An input file's SHA-256 (`None` for stdin or an unreadable file).
pub fn sha256_file(input: &Input) -> Option<String> {
    let Input::File(path) = input else {
        return None;
    };
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).ok()?;
    Some(crate::rules::hex(&h.finalize()))
}

/// How far past the oldest undelivered input a worker may run ahead: results wait in the
/// reorder buffer only for this window, which bounds memory whatever the number of inputs.
const WINDOW: usize = 32;

/// Reads every input on a pool of workers; `start` makes each input's local state (given
/// its index),
/// `on_event` folds events into it; `done` receives results in input order.
///
/// Workers take inputs in order from a shared counter, so results arrive nearly in order.
pub fn run<L, S, E, D, X>(
    inputs: &[Input],
    opts: &Options,
    progress: Option<Progress<'_>>,
    start: S,
    on_event: E,
    mut done: D,
) -> Result<(), X>
where
    L: Send,
    S: Fn(usize, &Input) -> L + Sync,
    E: Fn(&mut L, Event) + Sync,
    D: FnMut(Done<L>) -> Result<(), X>,
{
    let cancelled = || {
        opts.read
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    };
    let threads = opts
        .threads
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // One input gets the EVTX parser's own threads; many inputs share the workers.
    let evtx_threads = if inputs.len() == 1 { threads } else { 1 };
    let read_opts = ReadOptions {
        strict: opts.strict,
        evtx_threads,
        ..opts.read.clone()
    };
    let next = AtomicUsize::new(0);
    let delivered = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Done<L>)>();
    std::thread::scope(|scope| -> Result<(), X> {
        for _ in 0..threads.min(inputs.len().max(1)) {
            let tx = tx.clone();
            let (next, delivered, stop) = (&next, &delivered, &stop);
            let (start, on_event, read_opts, cancelled) =
                (&start, &on_event, &read_opts, &cancelled);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= inputs.len() || stop.load(Ordering::SeqCst) || cancelled() {
                    return;
                }
                while i >= delivered.load(Ordering::SeqCst) + WINDOW && !stop.load(Ordering::SeqCst)
                {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                let d = read_one(i, &inputs[i], read_opts, opts.hash, start, on_event);
                if tx.send((i, d)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut head = 0usize;
        let mut result = Ok(());
        for (i, d) in rx {
            // The reader measured the input already.
            if let Some(p) = progress {
                p(d.report.bytes);
            }
            pending.insert(i, d);
            while let Some(d) = pending.remove(&head) {
                head += 1;
                delivered.store(head, Ordering::SeqCst);
                if result.is_ok() {
                    result = done(d);
                    if result.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
        result
    })
}

fn read_one<L>(
    index: usize,
    input: &Input,
    read_opts: &ReadOptions,
    hash: bool,
    start: &(impl Fn(usize, &Input) -> L + Sync),
    on_event: &(impl Fn(&mut L, Event) + Sync),
) -> Done<L> {
    let mut local = start(index, input);
    let mut errors = Vec::new();
    let read = catch_unwind(AssertUnwindSafe(|| {
        read_input(input, read_opts, &mut |item| match item {
            Ok(event) => on_event(&mut local, event),
            Err(e) => {
                if errors.len() < KEPT_ERRORS {
                    errors.push(e);
                }
            }
        })
    }));
    let report = read.unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let mut r = InputReport::new(input.name().into());
        r.failure = Some(format!(
            "internal error while reading (please report): {msg}"
        ));
        r.rejected = 1;
        r
    });
    let sha256 = if hash { sha256_file(input) } else { None };
    Done {
        report,
        local,
        errors,
        sha256,
    }
}

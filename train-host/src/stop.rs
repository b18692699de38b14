//! Stopping a training run from outside without losing it: Ctrl-C (SIGINT) and, on Unix, SIGTERM
//! (`kill`, `timeout`, a service or container manager stopping the job) set a flag that training
//! reads after every batch, saving the epoch in progress before it stops. A second signal quits at
//! once. (SIGHUP is left alone: a run started under `nohup` must outlive its terminal.)
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The flag Ctrl-C and SIGTERM set from now on; hand it to [`crate::train::train_until`]. Once it
/// is set, the next signal ends the process: set it yourself when the work that can be stopped
/// gracefully is over, so that a signal after it quits at once.
pub fn on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // ctrlc (all platforms) handles Ctrl-C on a thread of its own, so it may print.
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: saving the epoch in progress after this batch (Ctrl-C again to quit without saving)");
    })
    .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    #[cfg(unix)]
    {
        use signal_hook::consts::SIGTERM;
        let err = |e: std::io::Error| format!("cannot handle SIGTERM: {e}");
        // The shutdown must be registered first: it sees the flag as the signal found it.
        signal_hook::flag::register_conditional_shutdown(SIGTERM, 128 + SIGTERM, Arc::clone(&stop)).map_err(err)?;
        signal_hook::flag::register(SIGTERM, Arc::clone(&stop)).map_err(err)?;
    }
    Ok(stop)
}

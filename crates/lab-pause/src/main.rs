//! The lab's pause container: the process that holds a pod's namespaces open.
//!
//! It does nothing until SIGTERM or SIGINT, then exits 0. As PID 1 of the pod's PID namespace
//! (when the pod shares it) it also reaps every child that exits, so no zombie is left behind.
//! Built statically (`-C target-feature=+crt-static`) so the image needs no shared libraries.

use std::process::ExitCode;

use rustix::process::{WaitOptions, waitpid};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    if std::env::args()
        .skip(1)
        .any(|a| a == "-v" || a == "--version")
    {
        println!("cniswap-lab-pause {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGCHLD]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("pause: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    for signal in signals.forever() {
        if signal == SIGCHLD {
            reap_children();
        } else {
            eprintln!("pause: shutting down, got signal {signal}");
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

/// Waits for every child that has exited, without blocking.
fn reap_children() {
    while let Ok(Some(_)) = waitpid(None, WaitOptions::NOHANG) {}
}

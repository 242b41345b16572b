//! One binary for both names: `cniswap`, and `kubectl-cniswap` (a symbolic link to it, which
//! kubectl runs for `kubectl cniswap`); `argv[0]` says which.
fn main() -> std::process::ExitCode {
    let argv0 = std::env::args_os().next();
    cniswap::run(cniswap::invoked_as(argv0.as_deref()))
}

//! `kubectl cniswap ...`: kubectl finds plugins named `kubectl-<name>` on PATH.
fn main() -> std::process::ExitCode {
    cniswap::run("kubectl cniswap")
}

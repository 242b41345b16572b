fn main() -> std::process::ExitCode {
    cniswap::run("cniswap")
}

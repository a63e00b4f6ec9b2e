fn main() -> std::process::ExitCode {
    assent_server::cli::run()
}

//! The host side of cifhe: CIFAR loading, architectures, compiling float networks into the integer
//! circuit, evaluation with the FHE simulator, and benchmarks. `main.rs` is the command line.
pub mod adapt;
pub mod arch;
pub mod augment;
pub mod backend;
pub mod bench;
pub mod bench_fhe;
pub mod bench_train;
pub mod cifar;
pub mod compile;
pub mod compile_run;
pub mod eval;
pub mod fhe;
pub mod fhe_noise;
pub mod inspect;
pub mod model_file;
pub mod net;
pub mod paths;
pub mod picture;
pub mod plot;
pub mod report;
pub mod run_folder;
pub mod schedule;
pub mod serve;
pub mod status;
pub mod stop;
pub mod train;
pub mod widths;

/// The value name a command-line enum takes (`--dataset cifar10`, `--schedule one-cycle`), for
/// commands written out: what clap parses back to `value`.
pub fn value_name<T: clap::ValueEnum>(value: &T) -> String {
    value.to_possible_value().expect("every value has a name").get_name().to_owned()
}

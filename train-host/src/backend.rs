//! Where burn runs the networks: chosen at run time (`--backend`), among those compiled in.
//!
//! burn 0.22 dispatches on the device, so the networks and the training loop are written once and
//! every backend runs the same code. The pure-Rust `flex` CPU backend is always there (tests, CI,
//! no set-up). The `libtorch` cargo feature adds burn's LibTorch backend, linked against the
//! libtorch of a `pip install torch==2.9.0` (the version `tch` 0.22 is written for): on this
//! machine's CPU it trains the VGG11 faster than `flex` (see BENCHMARKS.md), and on a machine
//! with an NVIDIA GPU the same build trains on it (`libtorch-cuda`). burn marks its LibTorch
//! backend deprecated in favour of CubeCL backends; it is still the one that links PyTorch's own
//! CPU kernels, which is what the CPU path here needs.
use burn::tensor::Device;

/// A burn backend and device to train and evaluate on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (always available).
    #[default]
    Flex,
    /// PyTorch's CPU kernels through burn's LibTorch backend (cargo feature `libtorch`).
    Libtorch,
    /// PyTorch's CUDA kernels on the first GPU (cargo feature `libtorch`, a CUDA machine).
    LibtorchCuda,
}

impl Backend {
    /// The device, or why this build cannot run on it.
    pub fn device(self) -> Result<Device, String> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            Backend::Libtorch | Backend::LibtorchCuda => libtorch(self == Backend::LibtorchCuda),
        }
    }

    /// The backends this build has, fastest-to-set-up first.
    pub fn compiled() -> Vec<Backend> {
        let mut v = vec![Backend::Flex];
        if cfg!(feature = "libtorch") {
            v.push(Backend::Libtorch);
        }
        v
    }

    /// A name for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Backend::Flex => "burn 0.22, flex CPU backend",
            Backend::Libtorch => "burn 0.22, LibTorch CPU backend",
            Backend::LibtorchCuda => "burn 0.22, LibTorch CUDA backend",
        }
    }
}

#[cfg(feature = "libtorch")]
#[allow(deprecated)] // burn-tch is deprecated upstream; see the module doc for why it is used.
fn libtorch(cuda: bool) -> Result<Device, String> {
    Ok(if cuda { Device::libtorch_cuda(0) } else { Device::libtorch() })
}

#[cfg(not(feature = "libtorch"))]
fn libtorch(_cuda: bool) -> Result<Device, String> {
    Err("this train-host was built without the LibTorch backend: build it with `--features libtorch` \
         and LIBTORCH_USE_PYTORCH=1 in a Python environment holding torch 2.9.0 (see README)"
        .into())
}

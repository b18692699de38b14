//! Where burn runs the networks: chosen at run time (`--backend`), among those compiled in.
//!
//! burn 0.22 dispatches on the device, so the networks and the training loop are written once and
//! every backend runs the same code. The pure-Rust `flex` CPU backend is always there (tests, CI,
//! no set-up). The `libtorch` cargo feature adds burn's LibTorch backend, linked against the
//! libtorch of a `pip install torch==2.9.0` (the version `tch` 0.22 is written for): on this
//! machine's CPU it trains the VGG11 faster than `flex` (see BENCHMARKS.md), and on a machine
//! with an NVIDIA GPU the same build trains on it (`libtorch-cuda`). burn marks its LibTorch
//! backend deprecated in favour of CubeCL backends; it is still the one that links PyTorch's own
//! CPU kernels, which is what the CPU path here needs. For GPUs, the `wgpu` feature adds burn's
//! CubeCL backend through wgpu (its maintained GPU path: Vulkan, Metal, DirectX 12); this machine
//! has no GPU, so it is built and run here on Mesa's software Vulkan device (see README).
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
    /// burn's CubeCL kernels through wgpu on the default adapter: Vulkan, Metal or DirectX 12
    /// (cargo feature `wgpu`).
    Wgpu,
}

impl Backend {
    /// The device, or why this build cannot run on it.
    pub fn device(self) -> Result<Device, String> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            Backend::Libtorch | Backend::LibtorchCuda => libtorch(self == Backend::LibtorchCuda),
            Backend::Wgpu => wgpu(),
        }
    }

    /// The backends this build has, fastest-to-set-up first.
    pub fn compiled() -> Vec<Backend> {
        let mut v = vec![Backend::Flex];
        if cfg!(feature = "libtorch") {
            v.push(Backend::Libtorch);
        }
        if cfg!(feature = "wgpu") {
            v.push(Backend::Wgpu);
        }
        v
    }

    /// The cargo feature that builds this backend in, if it needs one.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Backend::Flex => None,
            Backend::Libtorch | Backend::LibtorchCuda => Some("libtorch"),
            Backend::Wgpu => Some("wgpu"),
        }
    }

    /// The CPU threads this backend trains on, for CPU-hour figures; `None` on a GPU. LibTorch
    /// keeps its own pool (its intra-op threads: the physical cores, or `OMP_NUM_THREADS`), which
    /// can differ from rayon's (the logical cores, or `RAYON_NUM_THREADS`) that flex uses.
    pub fn cpu_threads(self) -> Option<usize> {
        match self {
            Backend::Flex => Some(rayon::current_num_threads()),
            Backend::Libtorch => Some(libtorch_threads()),
            Backend::LibtorchCuda | Backend::Wgpu => None,
        }
    }

    /// Where this backend trains, for reports: "on N threads" (its [`cpu_threads`](Self::cpu_threads))
    /// or "on the GPU".
    pub fn runs_on(self) -> String {
        runs_on(self.cpu_threads())
    }

    /// A name for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Backend::Flex => "burn 0.22, flex CPU backend",
            Backend::Libtorch => "burn 0.22, LibTorch CPU backend",
            Backend::LibtorchCuda => "burn 0.22, LibTorch CUDA backend",
            Backend::Wgpu => "burn 0.22, CubeCL wgpu backend",
        }
    }
}

/// "on N thread(s)" for a CPU pool of `cpu_threads`, "on the GPU" for none: the words every report
/// uses for where training ran.
pub fn runs_on(cpu_threads: Option<usize>) -> String {
    match cpu_threads {
        Some(n) => format!("on {n} thread{}", if n == 1 { "" } else { "s" }),
        None => "on the GPU".into(),
    }
}

#[cfg(feature = "libtorch")]
#[allow(deprecated)] // burn-tch is deprecated upstream; see the module doc for why it is used.
fn libtorch(cuda: bool) -> Result<Device, String> {
    Ok(if cuda { Device::libtorch_cuda(0) } else { Device::libtorch() })
}

#[cfg(feature = "libtorch")]
fn libtorch_threads() -> usize {
    tch::get_num_threads().max(1) as usize
}

#[cfg(not(feature = "libtorch"))]
fn libtorch_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(not(feature = "libtorch"))]
fn libtorch(_cuda: bool) -> Result<Device, String> {
    Err("this train-host was built without the LibTorch backend: build it with `--features libtorch` \
         and LIBTORCH_USE_PYTORCH=1 in a Python environment holding torch 2.9.0 (see README)"
        .into())
}

#[cfg(feature = "wgpu")]
fn wgpu() -> Result<Device, String> {
    Ok(Device::wgpu(Default::default()))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<Device, String> {
    Err("this train-host was built without the wgpu backend: build it with `--features wgpu`".into())
}

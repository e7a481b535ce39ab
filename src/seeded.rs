//! burn draws parameter initialisations and random tensors from one generator per device,
//! shared by every thread of the process. Seeding it and then drawing is only reproducible if
//! no other thread draws in between, so every seeded section runs under one lock.

use burn::tensor::Device;
use std::sync::Mutex;

static DEVICE_RNG: Mutex<()> = Mutex::new(());

/// Seeds `device`'s generator and runs `work` while no other seeded section can draw.
pub fn with_seed<R>(device: &Device, seed: u64, work: impl FnOnce() -> R) -> R {
    let _guard = DEVICE_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    work()
}

/// Builds a model reproducibly from `seed`: the seed, the build and every parameter's first
/// draw happen inside one [`with_seed`] section, so the same seed gives the same weights
/// whatever other threads draw.
pub fn build<M: burn::module::Module>(device: &Device, seed: u64, build: impl FnOnce() -> M) -> M {
    with_seed(device, seed, || {
        let model = build();
        initialise_now(&model);
        model
    })
}

/// Forces every parameter of `model` to be initialised now. burn initialises parameters
/// lazily, on first use, which would draw from the shared generator *after* a seeded section
/// has ended; call this inside [`with_seed`] right after building a model.
pub fn initialise_now<M: burn::module::Module>(model: &M) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}

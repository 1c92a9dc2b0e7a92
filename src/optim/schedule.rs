//! Learning-rate schedules, evaluated per epoch from the base rate (stateless, so a
//! resumed run gets the same rate as an uninterrupted one).

pub trait LrSchedule {
    /// The learning rate for `epoch` (0-based).
    fn lr_at(&self, base_lr: f32, epoch: usize) -> f32;
}

/// Multiply by `gamma` every `step_size` epochs (PyTorch's StepLR).
#[derive(Clone, Copy, Debug)]
pub struct StepLr {
    pub step_size: usize,
    pub gamma: f32,
}

impl LrSchedule for StepLr {
    fn lr_at(&self, base_lr: f32, epoch: usize) -> f32 {
        base_lr * self.gamma.powi((epoch / self.step_size.max(1)) as i32)
    }
}

/// Multiply by `gamma` every epoch (PyTorch's ExponentialLR).
#[derive(Clone, Copy, Debug)]
pub struct ExponentialLr {
    pub gamma: f32,
}

impl LrSchedule for ExponentialLr {
    fn lr_at(&self, base_lr: f32, epoch: usize) -> f32 {
        base_lr * self.gamma.powi(epoch as i32)
    }
}

//! What the accelerator did: products taken and declined, bytes copied each way, bytes
//! the weight cache saved, and the time spent copying and computing.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

static OFFLOADED: AtomicU64 = AtomicU64::new(0);
static DECLINED: AtomicU64 = AtomicU64::new(0);
static BYTES_UP: AtomicU64 = AtomicU64::new(0);
static BYTES_KEPT: AtomicU64 = AtomicU64::new(0);
static BYTES_DOWN: AtomicU64 = AtomicU64::new(0);
static NANOS_UP: AtomicU64 = AtomicU64::new(0);
static NANOS_COMPUTE: AtomicU64 = AtomicU64::new(0);
static NANOS_DOWN: AtomicU64 = AtomicU64::new(0);

/// Totals since the start of the process (differences with [`TransferStats::since`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Products computed by the accelerator.
    pub offloaded: u64,
    /// Products left to the CPU (too small, or a layout the accelerator cannot read).
    pub declined: u64,
    /// Bytes copied host to device.
    pub bytes_up: u64,
    /// Bytes of weights not copied because the device still held them.
    pub bytes_kept: u64,
    /// Bytes copied device to host.
    pub bytes_down: u64,
    pub upload_time: Duration,
    pub compute_time: Duration,
    pub download_time: Duration,
}

pub fn stats() -> TransferStats {
    let time = |n: &AtomicU64| Duration::from_nanos(n.load(Relaxed));
    TransferStats {
        offloaded: OFFLOADED.load(Relaxed),
        declined: DECLINED.load(Relaxed),
        bytes_up: BYTES_UP.load(Relaxed),
        bytes_kept: BYTES_KEPT.load(Relaxed),
        bytes_down: BYTES_DOWN.load(Relaxed),
        upload_time: time(&NANOS_UP),
        compute_time: time(&NANOS_COMPUTE),
        download_time: time(&NANOS_DOWN),
    }
}

impl TransferStats {
    /// The figures of one product an accelerator ran, to fill in and [`record`](Self::record).
    pub fn one_product() -> TransferStats {
        TransferStats {
            offloaded: 1,
            ..TransferStats::default()
        }
    }

    /// Counts an operand: copied up, or found on the device (`kept`).
    pub fn operand(&mut self, values: usize, kept: bool) {
        let bytes = (values * std::mem::size_of::<f32>()) as u64;
        if kept {
            self.bytes_kept += bytes;
        } else {
            self.bytes_up += bytes;
        }
    }

    /// Adds these figures to the process's totals ([`stats`]).
    pub fn record(&self) {
        let nanos = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        OFFLOADED.fetch_add(self.offloaded, Relaxed);
        DECLINED.fetch_add(self.declined, Relaxed);
        BYTES_UP.fetch_add(self.bytes_up, Relaxed);
        BYTES_KEPT.fetch_add(self.bytes_kept, Relaxed);
        BYTES_DOWN.fetch_add(self.bytes_down, Relaxed);
        NANOS_UP.fetch_add(nanos(self.upload_time), Relaxed);
        NANOS_COMPUTE.fetch_add(nanos(self.compute_time), Relaxed);
        NANOS_DOWN.fetch_add(nanos(self.download_time), Relaxed);
    }

    /// The change from `before` to `self` (for figures per step).
    pub fn since(&self, before: &TransferStats) -> TransferStats {
        TransferStats {
            offloaded: self.offloaded - before.offloaded,
            declined: self.declined - before.declined,
            bytes_up: self.bytes_up - before.bytes_up,
            bytes_kept: self.bytes_kept - before.bytes_kept,
            bytes_down: self.bytes_down - before.bytes_down,
            upload_time: self.upload_time.saturating_sub(before.upload_time),
            compute_time: self.compute_time.saturating_sub(before.compute_time),
            download_time: self.download_time.saturating_sub(before.download_time),
        }
    }

    /// Averages over `n` steps (`n >= 1`).
    pub fn per(&self, n: u32) -> TransferStats {
        let n = n.max(1);
        let each = |v: u64| v / n as u64;
        TransferStats {
            offloaded: each(self.offloaded),
            declined: each(self.declined),
            bytes_up: each(self.bytes_up),
            bytes_kept: each(self.bytes_kept),
            bytes_down: each(self.bytes_down),
            upload_time: self.upload_time / n,
            compute_time: self.compute_time / n,
            download_time: self.download_time / n,
        }
    }
}

impl std::fmt::Display for TransferStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} products on the device, {} small ones on the CPU; copied {:.1} MiB up \
             ({:.1} ms) and {:.1} MiB down ({:.1} ms); weights kept on the device saved \
             {:.1} MiB; device compute {:.1} ms",
            self.offloaded,
            self.declined,
            mib(self.bytes_up),
            ms(self.upload_time),
            mib(self.bytes_down),
            ms(self.download_time),
            mib(self.bytes_kept),
            ms(self.compute_time),
        )
    }
}

//! A group of threads in one process that sum buffers like the processes of an MPI job:
//! data-parallel training can be tested without MPI (each thread trains as one rank).

use super::Collective;
use std::sync::{Arc, Condvar, Mutex};

/// One member of a group of threads; make the group with [`LocalGroup::members`].
pub struct LocalGroup {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    size: usize,
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Each member's buffer of the sum in progress, by rank.
    parts: Vec<Option<Vec<f64>>>,
    /// The last completed sum, read by every member before it can start another.
    result: Vec<f64>,
    generation: u64,
}

impl LocalGroup {
    /// The `size` members, rank order; give each to its own thread.
    pub fn members(size: usize) -> Vec<Arc<dyn Collective>> {
        let shared = Arc::new(Shared {
            size,
            state: Mutex::new(State {
                parts: vec![None; size],
                ..State::default()
            }),
            done: Condvar::new(),
        });
        (0..size)
            .map(|rank| {
                Arc::new(LocalGroup {
                    rank,
                    shared: shared.clone(),
                }) as Arc<dyn Collective>
            })
            .collect()
    }

    /// The element-wise sum over members, added in rank order (the same on every member).
    fn sum(&self, values: Vec<f64>) -> Vec<f64> {
        let mut s = self.shared.state.lock().unwrap();
        s.parts[self.rank] = Some(values);
        let generation = s.generation;
        if s.parts.iter().all(Option::is_some) {
            let parts: Vec<Vec<f64>> = s.parts.iter_mut().map(|p| p.take().unwrap()).collect();
            let len = parts[0].len();
            assert!(
                parts.iter().all(|p| p.len() == len),
                "members summed buffers of different lengths"
            );
            s.result = (0..len).map(|i| parts.iter().map(|p| p[i]).sum()).collect();
            s.generation += 1;
            self.shared.done.notify_all();
        } else {
            s = (self.shared.done)
                .wait_while(s, |s| s.generation == generation)
                .unwrap();
        }
        s.result.clone()
    }
}

impl Collective for LocalGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn sum_f32(&self, buf: &mut [f32]) {
        let sum = self.sum(buf.iter().map(|&v| v as f64).collect());
        buf.iter_mut().zip(sum).for_each(|(b, s)| *b = s as f32);
    }
    fn sum_f64(&self, buf: &mut [f64]) {
        let sum = self.sum(buf.to_vec());
        buf.copy_from_slice(&sum);
    }
    fn abort(&self, code: i32) -> ! {
        panic!(
            "rank {} of a local group aborted with status {code}",
            self.rank
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_get_the_sum_every_time() {
        let group = LocalGroup::members(3);
        let handles: Vec<_> = group
            .into_iter()
            .map(|m| {
                std::thread::spawn(move || {
                    let mut seen = vec![];
                    for round in 0..50 {
                        let mut buf = [m.rank() as f32 + round as f32, 1.0];
                        m.sum_f32(&mut buf);
                        seen.push(buf);
                    }
                    (seen, m.all_equal(42), m.all_equal(m.rank() as u64))
                })
            })
            .collect();
        for h in handles {
            let (seen, same, differ) = h.join().unwrap();
            for (round, buf) in seen.iter().enumerate() {
                assert_eq!(*buf, [3.0 + 3.0 * round as f32, 3.0]);
            }
            assert!(same && !differ);
        }
    }
}

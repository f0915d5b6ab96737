//! One writer at a time per SQLite database in this process.
//!
//! SQLite lets one connection write at a time. Pooled connections that start write
//! transactions together race for that lock, and the losers sleep in SQLite's busy handler
//! (1, 2, 5 … 100 ms) even when the lock is free again after a fraction of that: under load
//! most of the latency tail was those sleeps. The gate queues them in the process instead, so
//! the next writer starts as soon as the previous one commits. Reads outside write
//! transactions never wait for it (WAL readers see the last commit), and SQLite's own lock
//! still guards against other processes. PostgreSQL needs no gate.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// The gate of one database, shared by the threads that run its use cases.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<Mutex<()>>);

thread_local! {
    /// The gate of the use case running on this thread, and whether this thread holds it.
    static CURRENT: RefCell<(Option<Gate>, bool)> = const { RefCell::new((None, false)) };
}

impl Gate {
    /// Makes write transactions started on this thread until the scope ends take turns at
    /// this gate.
    pub fn enter(&self) -> Scope {
        let previous = CURRENT.with(|c| c.borrow_mut().0.replace(self.clone()));
        Scope { previous }
    }
}

/// Restores the thread's previous gate when dropped.
pub struct Scope {
    previous: Option<Gate>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| c.borrow_mut().0 = previous);
    }
}

/// Runs `f` (one write transaction) in this thread's turn at its gate, if it has one and
/// does not hold it already.
pub fn in_turn<T>(f: impl FnOnce() -> T) -> T {
    let gate = CURRENT.with(|c| {
        let c = c.borrow();
        if c.1 { None } else { c.0.clone() }
    });
    let Some(gate) = gate else {
        return f();
    };
    let _turn = match gate.0.lock() {
        Ok(g) => g,
        // A panic during someone's turn poisons nothing that matters: the gate guards no data.
        Err(poisoned) => poisoned.into_inner(),
    };
    CURRENT.with(|c| c.borrow_mut().1 = true);
    let _held = Held;
    f()
}

/// Marks the thread's turn as over when dropped (also while unwinding).
struct Held;

impl Drop for Held {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().1 = false);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn threads_sharing_a_gate_write_one_at_a_time() {
        let gate = Gate::default();
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    let _scope = gate.enter();
                    for _ in 0..200 {
                        in_turn(|| {
                            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(n, Ordering::SeqCst);
                            std::thread::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_turn_inside_a_turn_does_not_wait_for_itself() {
        let gate = Gate::default();
        let _scope = gate.enter();
        assert_eq!(in_turn(|| in_turn(|| 7)), 7);
    }

    #[test]
    fn without_a_gate_nothing_waits() {
        assert_eq!(in_turn(|| 3), 3);
    }
}

//! One writer at a time per SQLite database in this process.
//!
//! SQLite lets one connection write at a time. Pooled connections that start write
//! transactions together race for that lock, and the losers sleep in SQLite's busy handler
//! (1, 2, 5 … 100 ms) even when the lock is free again after a fraction of that: under load
//! most of the latency tail was those sleeps. The gate queues them in the process instead, so
//! the next writer starts as soon as the previous one commits. Reads outside write
//! transactions never wait for it (WAL readers see the last commit), and SQLite's own lock
//! still guards against other processes. PostgreSQL needs no gate.
//!
//! The gate also holds the one connection those transactions write through. A SQLite
//! connection drops its whole page cache whenever another connection has written since its
//! last read; with writes spread over the pool, every write transaction started from a cold
//! cache and read its pages from the file again (some 28 reads a token request). One writer
//! connection keeps its cache across its own commits.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use super::DbConn;

/// The gate of one database, shared by the threads that run its use cases.
#[derive(Clone, Default)]
pub struct Gate(Arc<Mutex<Writer>>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

/// The writer connection of a gate, opened on first use (none for a gate without a file).
#[derive(Default)]
struct Writer {
    path: Option<String>,
    conn: Option<DbConn>,
}

impl Writer {
    /// The writer connection, opened (again) when there is none or the last one was left
    /// broken (a panic inside a transaction); `None` when it cannot be opened, and the
    /// caller's own connection writes instead.
    fn conn(&mut self) -> Option<&mut DbConn> {
        use diesel::r2d2::R2D2Connection;
        if self.conn.as_mut().is_some_and(|c| c.is_broken()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let path = self.path.as_deref()?;
            match super::open_sqlite(path) {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the SQLite writer connection");
                    return None;
                }
            }
        }
        self.conn.as_mut()
    }
}

thread_local! {
    /// The gate of the use case running on this thread, and whether this thread holds it.
    static CURRENT: RefCell<(Option<Gate>, bool)> = const { RefCell::new((None, false)) };
}

impl Gate {
    /// The gate of the SQLite database at `path`, writing through a connection of its own.
    pub fn for_file(path: &str) -> Gate {
        Gate(Arc::new(Mutex::new(Writer {
            path: Some(path.to_string()),
            conn: None,
        })))
    }

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
/// does not hold it already, with the gate's writer connection (`None`: write through your
/// own connection, as without a gate or inside the turn already).
pub fn in_turn<T>(f: impl FnOnce(Option<&mut DbConn>) -> T) -> T {
    let gate = CURRENT.with(|c| {
        let c = c.borrow();
        if c.1 { None } else { c.0.clone() }
    });
    let Some(gate) = gate else {
        return f(None);
    };
    let mut writer = match gate.0.lock() {
        Ok(g) => g,
        // A panic during someone's turn: the writer connection it left is checked (and
        // replaced when broken) before it is used again.
        Err(poisoned) => poisoned.into_inner(),
    };
    CURRENT.with(|c| c.borrow_mut().1 = true);
    let _held = Held;
    f(writer.conn())
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
                        in_turn(|_| {
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
        assert_eq!(in_turn(|_| in_turn(|_| 7)), 7);
    }

    #[test]
    fn write_transactions_go_through_the_gates_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db").display().to_string();
        let url = crate::db::DbUrl::Sqlite(path.clone());
        let pool = crate::db::connect(&url, 2).unwrap();
        let gate = Gate::for_file(&path);
        let _scope = gate.enter();
        let mut mine = pool.get().unwrap();
        // The rowid of the writer's last insert is the connection's own: it shows which
        // connection wrote.
        let last = |c: &mut DbConn| {
            #[derive(diesel::QueryableByName)]
            struct Last {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
            }
            diesel::RunQueryDsl::get_result::<Last>(
                diesel::sql_query("SELECT last_insert_rowid() AS id"),
                c,
            )
            .unwrap()
            .id
        };
        for kind in ["a", "b"] {
            crate::db::transaction(&mut mine, |c| {
                crate::store::detection_facts::insert(
                    c,
                    &crate::store::detection_facts::Fact {
                        kind,
                        subject: "s",
                        other: "",
                        at: crate::testkit::t0(),
                    },
                )
            })
            .unwrap();
        }
        assert_eq!(
            last(&mut mine),
            0,
            "the pooled connection wrote nothing itself"
        );
        in_turn(|writer| assert_eq!(last(writer.unwrap()), 2));
    }

    #[test]
    fn without_a_gate_nothing_waits() {
        assert_eq!(in_turn(|_| 3), 3);
    }
}

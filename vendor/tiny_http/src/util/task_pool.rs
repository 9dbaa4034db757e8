//! A pool of threads, one per task (connection), that reuses idle threads.
//!
//! pypowerwall-server patch: upstream counted idle threads in an atomic that a thread only
//! decremented once it ran after being woken. Between `notify_one` and that moment the count
//! was stale, so a burst of new connections queued several tasks for one woken thread; the
//! others waited in the queue until some long-lived connection ended (up to the idle time-out,
//! 5 s). Here the idle count and the queue share one mutex, and `spawn` claims an idle thread
//! (decrements the count) in the same critical section that queues the task: the invariant
//! `idle + queue.len() == threads waiting` always holds, and a task is only queued when a
//! waiting thread is sure to take it. Otherwise a new thread is started for it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

type Task = Box<dyn FnOnce() + Send>;

/// Manages a collection of threads.
///
/// A new thread is created every time all the existing threads are busy.
/// An idle thread beyond [`MIN_THREADS`] ends after [`IDLE_EXIT`].
pub struct TaskPool {
    sharing: Arc<Sharing>,
}

struct State {
    /// Tasks handed to a claimed waiting thread that has not taken them yet.
    queue: VecDeque<Task>,
    /// Waiting threads not claimed by a queued task.
    idle: usize,
    /// Threads alive.
    threads: usize,
    /// The pool was dropped: waiting threads end.
    closed: bool,
}

struct Sharing {
    state: Mutex<State>,
    condvar: Condvar,
}

/// Threads kept waiting however long they are idle.
pub const MIN_THREADS: usize = 4;
/// An idle thread beyond [`MIN_THREADS`] ends after this.
const IDLE_EXIT: Duration = Duration::from_secs(5);

impl Sharing {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Tasks run outside the lock, so a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for TaskPool {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskPool {
    pub fn new() -> TaskPool {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    idle: 0,
                    threads: 0,
                    closed: false,
                }),
                condvar: Condvar::new(),
            }),
        };
        for _ in 0..MIN_THREADS {
            pool.add_thread(None);
        }
        pool
    }

    /// Runs `task` on a waiting thread, or on a new one when none is waiting. When the
    /// system cannot start a thread, the task is dropped unrun (its captures are released).
    pub fn spawn(&self, task: Task) {
        let mut state = self.sharing.lock();
        if state.idle > 0 {
            state.idle -= 1;
            state.queue.push_back(task);
            drop(state);
            self.sharing.condvar.notify_one();
        } else {
            drop(state);
            self.add_thread(Some(task));
        }
    }

    /// Number of threads alive, waiting or busy.
    pub fn threads(&self) -> usize {
        self.sharing.lock().threads
    }

    fn add_thread(&self, initial: Option<Task>) {
        let sharing = self.sharing.clone();
        sharing.lock().threads += 1;
        let spawned = thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || run(sharing, initial));
        if let Err(e) = spawned {
            // The closure (and the task in it) was dropped unrun.
            self.sharing.lock().threads -= 1;
            log::warn!("cannot start a connection thread: {}", e);
        }
    }
}

fn run(sharing: Arc<Sharing>, mut next: Option<Task>) {
    loop {
        if let Some(task) = next.take() {
            task();
        }
        let mut state = sharing.lock();
        state.idle += 1;
        loop {
            if let Some(task) = state.queue.pop_front() {
                // `spawn` already took this thread off `idle`.
                next = Some(task);
                break;
            }
            if state.closed {
                state.idle -= 1;
                state.threads -= 1;
                return;
            }
            if state.threads <= MIN_THREADS {
                state = sharing
                    .condvar
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            } else {
                let (s, res) = sharing
                    .condvar
                    .wait_timeout(state, IDLE_EXIT)
                    .unwrap_or_else(|e| e.into_inner());
                state = s;
                if res.timed_out() && state.queue.is_empty() {
                    // Unclaimed (the queue is empty), so still counted in `idle`.
                    state.idle -= 1;
                    state.threads -= 1;
                    return;
                }
            }
        }
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        self.sharing.lock().closed = true;
        self.sharing.condvar.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// A burst right after tasks ended (threads waking while new tasks arrive) runs every task
    /// at once: none waits behind a long-running one.
    #[test]
    fn burst_after_idle_runs_every_task_at_once() {
        let pool = TaskPool::new();
        for round in 0..8 {
            // a few short tasks, then a burst of long ones
            for _ in 0..3 {
                pool.spawn(Box::new(|| {}));
            }
            let (tx, rx) = mpsc::channel();
            let t0 = Instant::now();
            for _ in 0..12 {
                let tx = tx.clone();
                pool.spawn(Box::new(move || {
                    let _ = tx.send(t0.elapsed());
                    thread::sleep(Duration::from_millis(300));
                }));
            }
            for _ in 0..12 {
                let waited = rx
                    .recv_timeout(Duration::from_secs(2))
                    .expect("task started");
                assert!(
                    waited < Duration::from_millis(250),
                    "round {round}: {waited:?}"
                );
            }
            thread::sleep(Duration::from_millis(350));
        }
    }
}

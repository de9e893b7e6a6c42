//! How a worker shares its training threads among the tasks it runs.
//!
//! While the coordinator has work for every slot, each of the `parallel` slots trains on its
//! own even share of the threads (`threads / parallel`, the remainder to the first ones), as a
//! fixed pool per slot did. When a lease request finds nothing pending, the worker *lends*:
//! the threads are split among the tasks running now instead, so the last wide task of a sweep
//! trains on every core of its machine rather than on one while the others idle. A new lease
//! ends the lending. A level trains on its task's share only where more than one thread pays
//! (`Plan::threads_pay`, measured: wide dense levels, sparse ones of many kept weights), on
//! one thread otherwise. Shares change between levels: a task asks for its pool at the start of
//! each level ([`crate::imp::run_task_on`]), so a task lent more threads gives them back when
//! its level ends, and for that long the machine runs more threads than cores.
//!
//! Every task keeps a pool of its own (tasks sharing one pool stalled each other: a matrix
//! product's work-stealing join waited on a thread busy with another task's level), rebuilt
//! when its share changes. The engine's results do not depend on the thread count.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::layout::Plan;

/// The threads of one running task: the task at `rank` (0-based, in order of start) among
/// `running` tasks, on a worker of `threads` threads and `slots` slots, while `lending` or not.
/// At least one.
pub fn share(threads: usize, slots: usize, running: usize, rank: usize, lending: bool) -> usize {
    let ways = if lending { running } else { slots }.max(1);
    (threads / ways + usize::from(rank < threads % ways)).max(1)
}

/// A worker's threads and who holds them.
#[derive(Debug)]
pub struct Cores {
    threads: usize,
    slots: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The running tasks, by id, in order of start.
    running: Vec<u64>,
    next_id: u64,
    lending: bool,
}

impl Cores {
    /// A worker of `threads` training threads and `slots` task slots.
    pub fn new(threads: usize, slots: usize) -> Arc<Cores> {
        Arc::new(Cores {
            threads: threads.max(1),
            slots: slots.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lend the threads of idle slots to the running tasks (`true`: the coordinator had
    /// nothing pending), or stop lending (`false`: a new task arrived).
    pub fn set_lending(&self, lending: bool) {
        self.state().lending = lending;
    }

    /// A task starts: its share of the threads until [`Member`] is dropped.
    pub fn join(self: &Arc<Cores>) -> Member {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        state.running.push(id);
        Member {
            cores: Arc::clone(self),
            id,
            pool: Mutex::new(None),
        }
    }

    /// The threads of task `id` now.
    fn threads_of(&self, id: u64) -> usize {
        let state = self.state();
        let rank = state.running.iter().position(|&r| r == id).unwrap_or(0);
        share(
            self.threads,
            self.slots,
            state.running.len(),
            rank,
            state.lending,
        )
    }
}

/// One running task's hold on the worker's threads; gives them back when dropped.
#[derive(Debug)]
pub struct Member {
    cores: Arc<Cores>,
    id: u64,
    pool: Mutex<Option<Arc<rayon::ThreadPool>>>,
}

impl Member {
    /// The pool for the task's next level, of plan `plan`: its own, with the task's share of
    /// the threads now where more than one thread pays ([`Plan::threads_pay`]), one thread
    /// where it does not; rebuilt when the count changed. When a new pool cannot be started
    /// the old one stays (`None` only if there is none).
    pub fn pool(&self, plan: &Plan) -> Option<Arc<rayon::ThreadPool>> {
        let threads = if plan.threads_pay() {
            self.cores.threads_of(self.id)
        } else {
            1
        };
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pool.as_ref().filter(|p| p.current_num_threads() == threads) {
            return Some(Arc::clone(p));
        }
        let id = self.id;
        match rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("imp-{id}-{i}"))
            .build()
        {
            Ok(fresh) => *pool = Some(Arc::new(fresh)),
            Err(e) => tracing::warn!(threads, error = %e, "cannot start a training pool"),
        }
        pool.clone()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.cores.state().running.retain(|&r| r != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_lending_every_slot_has_its_even_share_of_the_threads() {
        let slots = |threads, parallel| -> Vec<usize> {
            (0..parallel)
                .map(|rank| share(threads, parallel, parallel, rank, false))
                .collect()
        };
        assert_eq!(slots(2, 2), vec![1, 1]);
        assert_eq!(slots(8, 3), vec![3, 3, 2]);
        assert_eq!(slots(4, 1), vec![4]);
        // More slots than threads: one each.
        assert_eq!(slots(1, 3), vec![1, 1, 1]);
        // A task alone keeps its slot's share while other work may come.
        assert_eq!(share(16, 4, 1, 0, false), 4);
    }

    #[test]
    fn lending_splits_the_threads_among_the_running_tasks() {
        assert_eq!(share(2, 2, 1, 0, true), 2);
        assert_eq!(share(16, 4, 1, 0, true), 16);
        assert_eq!(
            (0..3).map(|r| share(16, 4, 3, r, true)).collect::<Vec<_>>(),
            vec![6, 5, 5]
        );
        // Nothing running: a task that starts gets everything.
        assert_eq!(share(8, 4, 0, 0, true), 8);
    }

    /// The plan of a dense level of the `[4, width, width, 2]` network.
    fn dense(width: usize) -> Plan {
        let shape = [4, width, width, 2];
        Plan::with_threshold(&shape, &crate::prune::dense(&shape), 0.4)
    }

    #[test]
    fn a_task_gets_more_threads_when_lending_starts_and_gives_them_back() {
        let wide = dense(1310);
        assert!(wide.threads_pay());
        let cores = Cores::new(4, 2);
        let first = cores.join();
        let second = cores.join();
        let threads = |m: &Member| m.pool(&wide).unwrap().current_num_threads();
        assert_eq!((threads(&first), threads(&second)), (2, 2));
        let pool = first.pool(&wide).unwrap();
        assert!(
            Arc::ptr_eq(&pool, &first.pool(&wide).unwrap()),
            "kept while unchanged"
        );
        drop(second);
        assert_eq!(
            threads(&first),
            2,
            "a slot's share until the coordinator is idle"
        );
        cores.set_lending(true);
        assert_eq!(threads(&first), 4, "lent the idle slot's threads");
        cores.set_lending(false);
        let third = cores.join();
        assert_eq!((threads(&first), threads(&third)), (2, 2));
        drop(first);
        cores.set_lending(true);
        assert_eq!(threads(&third), 4, "the later task ranks first once alone");
        // A narrow level trains on one thread whatever the share.
        let narrow = dense(104);
        assert!(!narrow.threads_pay());
        assert_eq!(third.pool(&narrow).unwrap().current_num_threads(), 1);
    }
}

//! The worker: trains masked MLPs through iterative magnitude pruning with dfdx.
//!
//! - [`model`]: the masked MLP's parameters and their seeded initialisation;
//! - [`engine`]: training on dfdx: the compacted network of a level, dense and sparse layers,
//!   one Adam step, the forward pass without a tape;
//! - [`train`]: one level's training loop: shuffled mini-batches, early stopping on the
//!   held-out loss, per-task test accuracy;
//! - [`prune`]: global or layer-wise magnitude pruning to an exact remaining count;
//! - [`imp`]: the IMP trajectory (train, prune, reset, repeat) of one task, level by level,
//!   with the ticket-graph analysis of every level and resumption from a stored mask;
//! - [`client`]: the pull loop against a coordinator (lease, heartbeat, report, complete);
//! - [`shutdown`]: a connected worker's shutdown, one cancellation token with a child per
//!   lease;
//! - [`bench`](mod@bench): seconds per IMP level and peak memory for a few widths;
//! - [`alloc`]: the binaries' memory allocator, which keeps large freed blocks for the
//!   next request of their size instead of letting training fragment the heap.

pub mod alloc;
pub mod bench;
pub mod client;
pub mod engine;
pub mod imp;
pub mod model;
pub mod prune;
pub mod shutdown;
pub mod train;

//! The training engine: what one IMP level costs is what its remaining weights cost.
//!
//! - [`layout`]: the plan of a level: the neurons that can matter (inactive ones are left out)
//!   and, per weight matrix, the dense or the sparse path, chosen from the masks alone;
//! - [`network`]: the compacted network as persistent dfdx tensors, one training step
//!   (forward, loss, backward, Adam in place) and the forward pass without a tape;
//! - [`bias`]: what follows a dense layer's product (bias and ReLU) as one operation, with
//!   dfdx's arithmetic;
//! - [`sparse`]: the sparse masked linear layers as a custom dfdx operation on the tape, a run
//!   of consecutive ones as one operation;
//! - [`pool`]: the buffers those layers keep outside dfdx, reused from step to step;
//! - [`kernels`]: its arithmetic on raw slices (feature-major, one multiply-add over the batch
//!   per kept weight);
//! - [`structure`]: the CSR/CSC pattern of a sparse layer's kept weights.
//!
//! Every activation is feature-major, `[features, batch]`: dense layers are dfdx's matrix
//! product `W x` of the stored `[fan_out, fan_in]` matrix, sparse layers run over contiguous
//! batch rows. A level's results are a deterministic function of the task's settings and the
//! level, whatever the thread count.

pub mod bias;
pub mod kernels;
pub mod layout;
pub mod network;
pub mod pool;
pub mod sparse;
pub mod structure;

/// The version of this engine, reported with every level. Results of different engines may
/// differ in the last bits of every number (and so, through early stopping and pruning ties,
/// in more), so the coordinator never mixes them silently in one grid point.
///
/// 1: the first engine (dense, parameters copied into fresh tensors every step).
/// 2: persistent tensors, compacted networks, sparse layers below a density threshold.
/// 3: matrices of few rows (the output layer) sparse at any density, consecutive sparse
///    layers as one operation, the held-out loss 64 samples at a time.
/// 4: matrices of few columns (the first layer, which reads the data) sparse at any density
///    too, so a pruned network is one sparse run from the data to the logits; rows of a
///    ReLU's output that are zero over a batch are left out of the products that read them.
pub const ENGINE_VERSION: u32 = 4;

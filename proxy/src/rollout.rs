//! The route lifecycle and how routes move along it.
//!
//! Every change of mode, from `strangler flip`, the admin API or the automatic rollout, goes
//! through [`write`] (or, in the CLI without a running proxy, [`flip_file`]): the transition
//! is checked against the lifecycle, the routes file is rewritten atomically keeping its
//! comments, and the change is recorded in the audit journal. The running proxy applies the
//! file through its ordinary reload path, so the file stays the single source of truth and a
//! restart keeps the current modes. In cluster mode the same flip is written to the fleet's
//! bucket with compare-and-set instead (see [`crate::cluster`]).

pub mod auto;
mod edit;
pub mod evidence;
pub mod gate;
pub mod journal;
pub mod lifecycle;
mod write;

pub use auto::{GateView, Gates};
pub(crate) use edit::plan;
pub use edit::{Flip, FlipError, Target, edit, flip_file, set_stages};
pub use evidence::{Counts, Evidence, Figures, Side};
pub use gate::{Decision, decide, next_stage};
pub use journal::Change;
pub use lifecycle::{Stage, TransitionError};
pub use write::write;

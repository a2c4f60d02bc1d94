//! The route lifecycle and how routes move along it.
//!
//! Every change of mode, from `strangler flip`, the admin API or (later) the automatic
//! rollout, goes through [`flip_file`]: the transition is checked against the lifecycle, the
//! routes file is rewritten atomically keeping its comments, and the change is recorded in
//! the audit journal. The running proxy applies the file through its ordinary reload path,
//! so the file stays the single source of truth and a restart keeps the current modes.

pub mod auto;
mod edit;
pub mod evidence;
pub mod gate;
pub mod journal;
pub mod lifecycle;

pub use auto::{GateView, Gates};
pub use edit::{Flip, FlipError, Target, edit, flip_file};
pub use evidence::{Evidence, Figures, Side};
pub use gate::{Decision, decide, next_stage};
pub use journal::Change;
pub use lifecycle::{Stage, TransitionError};

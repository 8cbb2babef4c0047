//! paytrace-tracer: taint tracing, source-of-funds and path queries over indexed transfers.
//!
//! The algorithms are pure over two small read traits: [`FlowSource`] (transfers of an address,
//! one transfer, the transfers of a transaction) and [`LabelSource`] (an address's category).
//! [`paytrace_indexer::Store`] implements `FlowSource`; [`MemoryGraph`] does too, so every
//! algorithm is tested on hand-built in-memory graphs and runs unchanged on the store. Labels
//! come in through `LabelSource`; [`MemoryLabels`] serves until the label store plugs in.
//!
//! Semantics of the taint models are written out in `docs/heuristics.md`.

pub mod alerts;
mod backward;
mod cache;
pub mod cluster;
pub mod demo;
mod error;
pub mod export;
mod forward;
mod merge;
pub mod model;
pub mod par;
pub mod paths;
pub mod patterns;
pub mod report;
mod result;
pub mod risk;
pub mod source;

pub use backward::{BackSeed, trace_backward, trace_backward_within};
pub use cache::CachedSource;
pub use error::TraceError;
pub use forward::{trace_forward, trace_forward_within};
pub use model::{Model, ModelParseError};
pub use paths::{FoundPath, PathParams, PathResult, PathTarget, find_paths};
pub use result::{
    CoinJoinEvidence, Destination, EvidencePath, FlowEdge, Parameters, PathHop, Seed, SeedInfo,
    Status, TraceParams, TraceResult, TraceStats, Truncation,
};
pub use source::{
    Category, Checkpointed, FlowSource, HistoryWindow, LabelSource, MemoryGraph, MemoryLabels,
    StopList, StoreLabels,
};

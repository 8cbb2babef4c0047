//! paytrace application layer: what the command-line tool (and later a server) calls on top of
//! the indexer and the tracer: the config-to-parameter mapping and the argument helpers every
//! command shares ([`params`]), one address parser ([`address`]), token units ([`units`]), and
//! the evaluation harness ([`eval`]): seeded payroll
//! scenarios with exact ground truth, run through indexing, labels, clustering, reports,
//! screening and pattern detection, and scored per finding kind; and AMLSim samples scored at
//! the level of their planted patterns.

pub mod address;
pub mod alerts;
pub mod chain_view;
pub mod cluster_view;
pub mod clusters;
pub mod eval;
pub mod explain;
pub mod explore;
pub mod keys;
pub mod labels;
pub mod params;
pub mod query;
pub mod report;
pub mod screen;
pub mod trace;
pub mod units;

//! Time and date options of the command line: the parsers live with the data they describe
//! ([`paytrace_indexer::time`]).

pub use paytrace_indexer::time::*;

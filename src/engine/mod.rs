//! The engine: runs a [`plan::Plan`] of resolved sources and channels and applies new plans live.

pub mod plan;

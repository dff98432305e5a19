//! Silt's DataFusion layer: turns what a segment's term index says into DataFusion scan plans.
//! Knows nothing about HTTP, tenants' limits or how segments are written.

pub mod access_plan;

//! In-memory Store (placeholder until built).

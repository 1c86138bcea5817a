//! Store implementations against real git (placeholder).

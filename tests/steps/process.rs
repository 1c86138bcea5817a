//! Steps that run the real mwsync binary.

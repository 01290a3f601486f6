//! (to be filled: see the crate's documentation)

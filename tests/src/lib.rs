//! End-to-end scenarios live in `tests/` beside this file; this library is empty.

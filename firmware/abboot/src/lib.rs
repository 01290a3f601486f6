//! A/B boot slots. Work in progress (issue #4): nothing here yet.
#![no_std]

//! `check-config` and `explain`.

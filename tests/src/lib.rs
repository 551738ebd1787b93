//! Shared helpers for the end-to-end scenarios in tests/tests/. Placeholder; being written.

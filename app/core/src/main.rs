//! The `gridlink` command line client. Being written.
fn main() {}

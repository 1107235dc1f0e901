//! The root uses `a`, `a` uses `b`: one way. Everything below that looks like a way back is not.
mod a;
mod b;
pub use std::fmt::Write;
pub use a::Ay;
pub fn run() {
    a::go();
}

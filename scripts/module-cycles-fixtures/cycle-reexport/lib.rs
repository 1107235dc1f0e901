mod a;
mod b;
pub use b::Bee;

use crate::{b::{self, Bee}};
pub struct Ay(pub Bee);
pub fn make_bee() -> Bee {
    b::Bee
}

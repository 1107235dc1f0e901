use crate::b::inner::Thing;
pub fn go(_: Thing) {}

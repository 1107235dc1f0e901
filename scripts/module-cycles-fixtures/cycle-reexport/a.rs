pub fn go(_: crate::Bee) {}

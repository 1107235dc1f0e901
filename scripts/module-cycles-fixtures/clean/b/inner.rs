// super::Bee is b itself: no edge.
pub fn bee() -> super::Bee {
    super::Bee
}

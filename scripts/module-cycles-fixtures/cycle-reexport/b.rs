use crate::a;
pub struct Bee;
pub fn call() {
    a::go(Bee);
}

use super::super::a;
pub struct Thing;
pub fn call() {
    a::go(Thing);
}

mod a;
pub fn run() {
    a::go();
}
pub(crate) fn helper() {}

pub fn go() {
    crate::helper();
}

mod inner;
pub struct Bee;
/* A block comment: crate::a::go(), /* nested */ crate::run(). */
fn _lifetime<'a>(x: &'a str) -> &'a str {
    x
}
#[cfg(test)]
mod tests {
    #[test]
    fn the_test_may_call_back() {
        crate::a::go();
        super::super::run();
    }
}

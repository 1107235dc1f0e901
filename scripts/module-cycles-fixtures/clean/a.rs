use crate::b::Bee;
/// Not an import: crate::lib, crate::a.
pub struct Ay(pub Bee);
pub fn go() {
    // crate::run() would be a cycle, but this is a comment.
    let _ = "crate::run() in a string";
    let _ = r#"crate::run() in a raw string"#;
    let _ = '"';
    let _ = crate::Write::write_str; // a name lib.rs takes from std: no edge
}

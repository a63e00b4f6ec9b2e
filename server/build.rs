// `sqlx::migrate!` embeds the migrations at compile time; without this a migration added or
// changed would not be compiled in until some Rust file changed too.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

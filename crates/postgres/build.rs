//! Re-embed the migrations when one is added (sqlx::migrate! only tracks existing files).

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}

fn main() {
    println!("pypowerwall-server {}", env!("CARGO_PKG_VERSION"));
}

//! Writes `stepup.example.rs` (messages, client, server) beside `account.proto` in the directory
//! given as the first argument.

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: stepup-grpc-codegen <examples/grpc>");
    let files = protox::compile([format!("{dir}/account.proto")], [dir.clone()])
        .expect("account.proto compiles");
    tonic_prost_build::configure()
        .out_dir(&dir)
        .compile_fds(files)
        .expect("the code is generated");
}

//! Compiles the versioned API with protox (pure Rust: no system `protoc`) and generates the
//! prost messages and tonic client and server.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["lottery/v1/coordinator.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

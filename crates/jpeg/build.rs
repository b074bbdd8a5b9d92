//! Compiles the C shim against the system's libjpeg(-turbo) headers and links the library:
//! found through pkg-config (`libjpeg`) where it is known there, else `-ljpeg` from the
//! compiler's default paths (Debian's `libjpeg62-turbo-dev`, Fedora's `libjpeg-turbo-devel`,
//! Homebrew's `jpeg-turbo`).

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    let mut build = cc::Build::new();
    build.file("src/shim.c").opt_level(2).warnings(true);
    match pkg_config::Config::new().probe("libjpeg") {
        Ok(library) => {
            for path in &library.include_paths {
                build.include(path);
            }
        }
        Err(_) => println!("cargo:rustc-link-lib=jpeg"),
    }
    build.compile("natview_jpeg_shim");
}

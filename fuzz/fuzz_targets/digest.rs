//! Digests as clients send them in URLs and headers: parsing never panics, and a digest that
//! parses prints back as the same text and parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipshape_oci::Digest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = text.parse::<Digest>() {
        let shown = d.to_string();
        assert_eq!(shown, text, "a digest prints as it was given");
        assert_eq!(shown.parse::<Digest>().unwrap(), d);
    }
});

//! `Range` and `Content-Range` headers: never a panic, and a satisfiable range always lies
//! within the blob, whatever its size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipshape_oci::range::{RangeRequest, blob_range, upload_content_range};

fuzz_target!(|input: (u64, &str)| {
    let (size, header) = input;
    if let RangeRequest::Part { first, last } = blob_range(Some(header), size) {
        assert!(first <= last && last < size, "{header:?} of {size}: {first}-{last}");
    }
    let _ = upload_content_range(header);
});

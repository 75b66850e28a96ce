//! Repository names, tags, references, upload ids and repository globs: parsing never
//! panics, what parses prints back unchanged, and a glob's match never panics on any name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipshape_oci::{Reference, RepoGlob, RepoName, Tag, UploadId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = text.parse::<RepoName>() {
        assert_eq!(name.to_string(), text);
    }
    if let Ok(tag) = text.parse::<Tag>() {
        assert_eq!(tag.to_string(), text);
    }
    if let Ok(reference) = text.parse::<Reference>() {
        assert_eq!(reference.to_string(), text);
    }
    let _ = text.parse::<UploadId>();
    // A glob and a name from one input: split at the first newline.
    let (pattern, repo) = text.split_once('\n').unwrap_or((text, text));
    if let Ok(glob) = RepoGlob::parse(pattern) {
        let _ = glob.matches(repo);
    }
});

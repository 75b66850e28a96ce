//! Retention policy files (TOML or JSON) as operators write them: parsing and validating never
//! panic, and a valid policy written back as TOML and JSON reads back as the same policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipshape_gc::retention::spec::PolicySpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = PolicySpec::parse(text) else {
        return;
    };
    if spec.validate().is_err() {
        return;
    }
    let toml = spec.to_toml();
    let again = PolicySpec::from_toml(&toml).expect("a valid policy's TOML reads back");
    assert_eq!(again.to_toml(), toml);
    let json = spec.to_json();
    let again = PolicySpec::from_json(&json).expect("a valid policy's JSON reads back");
    assert_eq!(again.to_json(), json);
});

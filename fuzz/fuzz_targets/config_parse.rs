//! Configuration text: loading never panics, and an accepted configuration printed back as
//! YAML loads again to the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use limits_core::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(policy) = Policy::from_yaml(text) {
        let printed = policy.config().to_yaml();
        let again = Policy::from_yaml(&printed)
            .unwrap_or_else(|e| panic!("accepted config does not validate again: {e}\n{printed}"));
        assert_eq!(again.config(), policy.config(), "{printed}");
    }
});

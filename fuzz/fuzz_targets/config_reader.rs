//! Both nvinfer config readers on arbitrary text: no panic, and whatever reads successfully
//! writes back (`to_key_file_string`) to text that reads back to the same config.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nvtl_core::config::InferConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Some(Path::new("/fuzz/config.txt"));
    for result in [
        InferConfig::from_key_file_str(text, source),
        InferConfig::from_yaml_str(text, source),
    ] {
        let Ok(loaded) = result else { continue };
        for warning in &loaded.warnings {
            let _ = warning.to_string();
        }
        let written = loaded.config.to_key_file_string();
        let back = InferConfig::from_key_file_str(&written, source)
            .unwrap_or_else(|e| panic!("written config does not read back: {e}\n{written}"));
        assert_eq!(
            back.config, loaded.config,
            "round trip changed the config:\n{written}"
        );
    }
});

//! rustls needs a process-wide crypto provider; we use ring (no cmake, small).

use std::sync::Once;

pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another library in the process installed one first: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

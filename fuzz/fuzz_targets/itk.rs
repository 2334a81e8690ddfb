#![no_main]
//! Any bytes through the ITK readers: requests, their strict checks, every value decoded, and
//! responses. None may panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = codecs::itk::parse(data) {
        let _ = message.check_strict();
        let de = &message.envelope;
        let _ = de.service.decoded();
        let _ = de.tracking_id.decoded();
        for address in &de.addresses {
            let _ = address.uri.decoded();
        }
        let _ = (de.interaction(), de.ack_requested(), de.inf_ack_requested());
        for payload in &de.payloads {
            let _ = payload.id.decoded();
        }
    }
    let _ = codecs::itk::parse_response(data);
});

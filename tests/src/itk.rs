//! ITK requests the tests send.

/// An infrastructure ACK with `tracking_id`: a small, valid ITK request (SOAP, WS-Addressing,
/// a Distribution Envelope) for the InfAck service, which each test's config routes or not.
pub fn inf_ack_request(tracking_id: &str) -> Vec<u8> {
    let ack = codecs::itk::InfAck {
        tracking_id,
        payload_uuid: "0B7E4A39-1F0C-4D5E-9A61-3C0D2B8E7F10",
        to: Some("urn:nhs-uk:addressing:ods:X0912"),
        audit_identity: "urn:nhs-uk:identity:ods:TEST",
        sender: None,
        timestamp: "2026-11-25T09:30:00Z",
        tracking_id_ref: "217D1168-7F0B-4F31-A0A9-5B030E545FAE",
        service_ref: "urn:nhs-itk:services:201005:SendCDADocument-v2-0",
        result: codecs::itk::InfResult::Ok,
        errors: &[],
    };
    let header = codecs::itk::RequestHeader {
        message_id: "5E1A7C90-3B2D-4F6E-8A1C-9D0B2E4F6A81",
        action: codecs::itk::SERVICE_INF_ACK,
        to: "http://127.0.0.1/itk",
        from: None,
        timestamp: None,
        username: None,
    };
    let mut bytes = Vec::new();
    codecs::itk::write_soap_request(&mut bytes, &header, |out| {
        codecs::itk::write_infrastructure_ack(out, &ack)
    });
    bytes
}

//! ITK variants: a SOAP 1.1 request with WS-Addressing headers around a Distribution Envelope
//! addressed to one organisation, carrying either an HL7v2 message as base64 or a CDA-like
//! document inline. The WS-Addressing MessageID and the tracking id are loadgen identifiers
//! ([`crate::ids::uuid`]), so an endpoint can tell which message reached it.
use super::{Kind, Template};
use crate::ids;
use crate::rng::Rng;

pub const SERVICES: &[&str] = &[
    "urn:nhs-itk:services:201005:SendCDADocument-v2-0",
    "urn:nhs-itk:services:201005:admitPatient-v1-0",
    "urn:nhs-itk:services:201005:SendDischargeSummary-v1-0",
];

fn b64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn payload_uuid(rng: &mut Rng) -> String {
    format!(
        "{:08X}-{:04X}-4{:03X}-8{:03X}-{:012X}",
        rng.next_u64() as u32,
        rng.below(0x10000),
        rng.below(0x1000),
        rng.below(0x1000),
        rng.next_u64() & 0xFFFF_FFFF_FFFF
    )
}

/// Parts split at: MessageID, To (the endpoint URL is not known to the sender: the router's),
/// tracking id, address.
pub fn template(rng: &mut Rng, variant: usize) -> Template {
    let service = rng.pick(SERVICES).copied().unwrap_or(SERVICES[0]);
    let action_tail = service.rsplit(':').next().unwrap_or("x");
    let payload_id = format!("uuid_{}", payload_uuid(rng));
    let (mimetype, profile, base64, content) = if variant % 2 == 0 {
        let mut hl7 = Vec::new();
        let t = super::hl7::template(Kind::AdtA01, rng, variant);
        super::hl7::write(&t, "EPR", "ITK", 0, variant as u64, &mut hl7);
        (
            "text/plain",
            "urn:nhs-en:profile:ITKHL7v2-ADT-A01-v1-0",
            "true",
            b64(&hl7),
        )
    } else {
        let sections: String = (0..(1 + variant % 6))
            .map(|i| {
                format!(
                    "<component><section><title>Section {i}</title><text>Patient seen in clinic; \
                     plan agreed &amp; letter sent to GP. Results &lt;normal&gt;.</text></section></component>"
                )
            })
            .collect();
        (
            "text/xml",
            "urn:nhs-en:profile:nonCodedCDADocument-v2-0",
            "false",
            format!(
                "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id root=\"{}\"/><title>Discharge summary</title>\
                 <recordTarget><patientRole><id root=\"2.16.840.1.113883.2.1.4.1\" extension=\"9{:09}\"/></patientRole></recordTarget>\
                 <component><structuredBody>{sections}</structuredBody></component></ClinicalDocument>",
                payload_uuid(rng),
                rng.below(1_000_000_000)
            ),
        )
    };
    let p0 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\"><soap:Header><wsa:MessageID>uuid:".to_string();
    let p1 = format!("</wsa:MessageID><wsa:Action>{service}</wsa:Action><wsa:To>");
    let p2 = format!(
        "</wsa:To><wsa:From><wsa:Address>https://pas.rx8.example.nhs.uk/itk</wsa:Address></wsa:From></soap:Header>\
         <soap:Body><itk:DistributionEnvelope xmlns:itk=\"urn:nhs-itk:ns:201005\"><itk:header service=\"{service}\" trackingid=\""
    );
    let p3 = "\"><itk:addresslist><itk:address uri=\"".to_string();
    let p4 = format!(
        "\"/></itk:addresslist><itk:auditIdentity><itk:id uri=\"urn:nhs-uk:identity:ods:RX8:PAS\"/></itk:auditIdentity>\
         <itk:manifest count=\"1\"><itk:manifestitem id=\"{payload_id}\" mimetype=\"{mimetype}\" profileid=\"{profile}\" base64=\"{base64}\"/></itk:manifest>\
         <itk:senderAddress uri=\"urn:nhs-uk:addressing:ods:RX8:PAS\"/><itk:handlingSpecification>\
         <itk:spec key=\"urn:nhs-itk:ns:201005:interaction\" value=\"urn:nhs-itk:interaction:{action_tail}\"/>\
         <itk:spec key=\"urn:nhs-itk:ns:201005:infackrequested\" value=\"false\"/></itk:handlingSpecification></itk:header>\
         <itk:payloads count=\"1\"><itk:payload id=\"{payload_id}\">{content}</itk:payload></itk:payloads></itk:DistributionEnvelope></soap:Body></soap:Envelope>"
    );
    Template {
        parts: vec![
            p0.into_bytes(),
            p1.into_bytes(),
            p2.into_bytes(),
            p3.into_bytes(),
            p4.into_bytes(),
        ],
    }
}

/// The hub URL written as `wsa:To` (where the sender believes it is sending).
pub const HUB_URL: &str = "https://hub.rx8.example.nhs.uk/itk/syncsoap";

pub fn write(t: &Template, address: &str, tag: u32, seq: u64, out: &mut Vec<u8>) {
    let part = |i: usize| t.parts.get(i).map(Vec::as_slice).unwrap_or_default();
    let id = ids::uuid(tag, seq);
    out.extend_from_slice(part(0));
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(part(1));
    out.extend_from_slice(HUB_URL.as_bytes());
    out.extend_from_slice(part(2));
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(part(3));
    out.extend_from_slice(address.as_bytes());
    out.extend_from_slice(part(4));
}

/// The tracking id of a request loadgen made (the 36 characters after `trackingid="`).
pub fn tracking_id(request: &[u8]) -> Option<&[u8]> {
    let at = memchr::memmem::find(request, b"trackingid=\"")? + 12;
    request.get(at..at + 36)
}

//! Realistic messages for the benchmarks, built once per run.

/// An ADT^A01 of about 1.8 KB in the shape NHS trusts send: ITK profile MSH, PID with several
/// identifiers, NK1, PV1/PV2, allergies, diagnoses, insurance and Z-segments; CR-terminated.
pub fn adt_a01() -> Vec<u8> {
    let segments: &[&str] = &[
        "MSH|^~\\&|PAS|RX8|ROUTE|RX8HUB|20261125093015||ADT^A01^ADT_A01|MSG00017342|P|2.4|||AL|NE|GBR|UNICODE UTF-8|EN||iTKv1.0",
        "EVN|A01|20261125093000|||C3456789^Jones^Sarah^^^Dr^^^NHS|20261125092500|RX8",
        "PID|1||9449305552^^^NHS^NH~RX81234567^^^RX8^PI~A123456^^^RX8^MR||O'NEIL^Siobhán^Mary^^Ms^^L~SMITH^Siobhán^^^^^M||19620314|F|||14 Harbour View^Flat 2^Portsmouth^Hampshire^PO1 3AB^GBR^H~1 Old Road^^Fareham^^PO14 1AA^GBR^C||023 9228 6000^PRN^PH^^^^^^^^^023 9228 6000~07700 900123^ORN^CP||EN|M|C|||||A|Portsmouth|N|1||GBR||||N",
        "PD1|||Harbour Surgery^^J82001|G8234567^Patel^Anil^^^Dr^^^NHS",
        "NK1|1|O'NEIL^Patrick^^^Mr|SPO^Spouse^HL70063|14 Harbour View^Flat 2^Portsmouth^Hampshire^PO1 3AB^GBR^H|07700 900456^PRN^CP||NOK^Next of kin^HL70131",
        "NK1|2|SMITH^Aoife^^^Mrs|SIS^Sister^HL70063|22 Kings Road^^Southsea^^PO5 3AH^GBR^H|023 9273 1111^PRN^PH",
        "PV1|1|I|RX8W12^Bay 3^Bed 14^RX8^^^^Ward 12 Acute Medicine|21^Emergency^HL70007|||C3456789^Jones^Sarah^^^Dr^^^NHS|G8234567^Patel^Anil^^^Dr^^^NHS|C1234567^Brown^Tom^^^Dr^^^NHS|300^General Medicine|||19^Usual place of residence|||C3456789^Jones^Sarah^^^Dr^^^NHS|I|V00012345678^^^RX8^VN|||||||||||||||||||||||RX8|||||20261125092500",
        "PV2|||R07.4^Chest pain, unspecified^I10|||||20261128||||||||||||||||||||||||||||N",
        "AL1|1|DA|Z88.0^Penicillin^I10|SV|Anaphylaxis|20100101",
        "AL1|2|FA|Z91.010^Peanuts^I10|MO|Urticaria",
        "DG1|1|I10|R07.4^Chest pain, unspecified^I10|Chest pain|20261125092500|A",
        "OBX|1|NM|8867-4^Heart rate^LN||92|/min^beats per minute^UCUM|60-100|N|||F|||20261125092000",
        "OBX|3|TX|11506-3^Progress note^LN||Pt reports central chest pain radiating to left arm\\.br\\onset 07:40, 6/10, \\T\\ nausea.||||||F",
        "IN1|1|NHS^NHS England|X24^NHS England|NHS England^^Leeds^^LS2 7UE^GBR",
        "ZU1|20261125092500|Emergency admission via ED|N",
        "ZU3|1|A&E|Y",
        "ZU4|RX8W12^Ward 12",
        "ZU6|1|Self-referral",
        "ZU8|N",
    ];
    join(segments)
}

/// A general acknowledgement of about 120 bytes.
pub fn ack() -> Vec<u8> {
    join(&[
        "MSH|^~\\&|ROUTE|RX8HUB|PAS|RX8|20261125093016||ACK^A01^ACK|ACK00017342|P|2.4|||NE|NE",
        "MSA|AA|MSG00017342|Message accepted",
    ])
}

fn join(segments: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for segment in segments {
        out.extend_from_slice(segment.as_bytes());
        out.push(b'\r');
    }
    out
}

/// An ITK SOAP request of about 4 KB: WS-Addressing headers, a Distribution
/// Envelope addressed to two organisations, and the ADT above as a base64 payload, which is
/// how ITK carries ER7 HL7v2.
pub fn itk_request() -> Vec<u8> {
    let payload = base64(&adt_a01());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="http://www.w3.org/2005/08/addressing">
  <soap:Header>
    <wsa:MessageID>uuid:8A4C3A11-7F7B-4E3B-9D6C-2B1F5E0A9C42</wsa:MessageID>
    <wsa:Action>urn:nhs-itk:services:201005:admitPatient-v1-0</wsa:Action>
    <wsa:To>https://hub.example.nhs.uk/itk/syncsoap</wsa:To>
    <wsa:From><wsa:Address>https://pas.rx8.example.nhs.uk/itk</wsa:Address></wsa:From>
  </soap:Header>
  <soap:Body>
    <itk:DistributionEnvelope xmlns:itk="urn:nhs-itk:ns:201005">
      <itk:header service="urn:nhs-itk:services:201005:admitPatient-v1-0" trackingid="5C1E7E2A-96B1-4F0C-8E3D-7A2B9C4D1E6F">
        <itk:addresslist>
          <itk:address uri="urn:nhs-uk:addressing:ods:RX8:WARD12"/>
          <itk:address uri="urn:nhs-uk:addressing:ods:J82001"/>
        </itk:addresslist>
        <itk:auditIdentity><itk:id uri="urn:nhs-uk:identity:ods:RX8:PAS"/></itk:auditIdentity>
        <itk:manifest count="1">
          <itk:manifestitem id="uuid_3D2C1B0A-9F8E-4D7C-B6A5-0F1E2D3C4B5A" mimetype="text/plain" profileid="urn:nhs-en:profile:ITKHL7v2-ADT-A01-v1-0" base64="true"/>
        </itk:manifest>
        <itk:senderAddress uri="urn:nhs-uk:addressing:ods:RX8:PAS"/>
        <itk:handlingSpecification>
          <itk:spec key="urn:nhs-itk:ns:201005:interaction" value="urn:nhs-itk:interaction:admitPatient-v1-0"/>
          <itk:spec key="urn:nhs-itk:ns:201005:infackrequested" value="true"/>
          <itk:spec key="urn:nhs-itk:ns:201005:ackrequested" value="false"/>
        </itk:handlingSpecification>
      </itk:header>
      <itk:payloads count="1">
        <itk:payload id="uuid_3D2C1B0A-9F8E-4D7C-B6A5-0F1E2D3C4B5A">{payload}</itk:payload>
      </itk:payloads>
    </itk:DistributionEnvelope>
  </soap:Body>
</soap:Envelope>
"#
    )
    .into_bytes()
}

/// Standard base64 with padding; a dozen lines here beat a dependency for fixture data.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&str, &str); 7] = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn fixtures_have_the_sizes_the_benchmarks_claim() {
        let adt = adt_a01();
        assert!((1700..1900).contains(&adt.len()), "{}", adt.len());
        assert!((100..140).contains(&ack().len()), "{}", ack().len());
        let itk = itk_request();
        assert!((3800..4600).contains(&itk.len()), "{}", itk.len());
    }
}

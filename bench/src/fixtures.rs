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

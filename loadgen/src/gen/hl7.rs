//! HL7v2 variants. Each message is MSH + the segments of its kind with values drawn from the
//! seed: names from several languages (UTF-8, MSH-18 `UNICODE UTF-8`), free text with escape
//! sequences (`\F\ \S\ \T\ \R\ \E\ \.br\`), and for results, OBX payloads from a few hundred
//! bytes to tens of kilobytes (base64 `ED` documents and long `TX` reports).
use super::{Kind, Template};
use crate::ids;
use crate::rng::Rng;

const FAMILY: &[&str] = &[
    "SMITH",
    "O'NEIL",
    "JONES",
    "MÜLLER",
    "NOWAK",
    "Ó SÚILLEABHÁIN",
    "NGUYEN",
    "ØSTERGAARD",
    "GARCÍA",
    "PATEL",
    "KOWALCZYK",
    "WILLIAMS",
    "ZHANG",
    "DUBOIS",
    "KHAN",
    "ŁUKASIEWICZ",
];
const GIVEN: &[&str] = &[
    "Siobhán", "Zoë", "Mary", "Anil", "José", "Łukasz", "Aoife", "Björn", "Chloé", "Mohammed",
    "Tom", "Seán", "Renée", "Jürgen", "Priya", "Wei",
];
const STREETS: &[&str] = &[
    "14 Harbour View^Flat 2^Portsmouth^Hampshire^PO1 3AB^GBR^H",
    "1 Old Road^^Fareham^^PO14 1AA^GBR^H",
    "22 Kings Road^^Southsea^^PO5 3AH^GBR^H",
    "Rose Cottage^Lane End^Petersfield^^GU31 4AA^GBR^H",
];
const NOTES: &[&str] = &[
    "Pt reports central chest pain\\.br\\onset 07:40, 6/10, \\T\\ nausea.",
    "Reviewed by SpR \\F\\ consultant; plan: ECG \\T\\ troponin at 3h.",
    "Allergy to penicillin (rash)\\.br\\NKDA otherwise \\E\\ see notes.",
    "Social: lives alone \\S\\ carer visits twice daily \\R\\ weekends.",
    "Discharged home with TTO; GP to review in 2/52.",
];

/// MSH-3/4 of the sending systems.
const SENDERS: &[(&str, &str)] = &[
    ("PAS", "RX8"),
    ("WINPATH", "RX8LAB"),
    ("ICE", "RX8"),
    ("RIS", "RX8RAD"),
    ("EPR", "RX8"),
];

fn ts(rng: &mut Rng) -> String {
    format!(
        "202611{:02}{:02}{:02}{:02}",
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    )
}

fn nhs_number(rng: &mut Rng) -> String {
    format!("9{:09}", rng.below(1_000_000_000))
}

fn name(rng: &mut Rng) -> String {
    let family = rng.pick(FAMILY).copied().unwrap_or("SMITH");
    let given = rng.pick(GIVEN).copied().unwrap_or("Mary");
    format!(
        "{family}^{given}^^^{}",
        if rng.chance(0.5) { "Ms" } else { "Mr" }
    )
}

fn pid(rng: &mut Rng) -> String {
    format!(
        "PID|1||{}^^^NHS^NH~RX8{:07}^^^RX8^PI||{}||19{:02}{:02}{:02}|{}|||{}||023 9228 {:04}^PRN^PH||EN|M|C",
        nhs_number(rng),
        rng.below(10_000_000),
        name(rng),
        30 + rng.below(70),
        1 + rng.below(12),
        1 + rng.below(28),
        if rng.chance(0.5) { "F" } else { "M" },
        rng.pick(STREETS).copied().unwrap_or(""),
        rng.below(10_000)
    )
}

fn pv1(rng: &mut Rng) -> String {
    format!(
        "PV1|1|I|RX8W{:02}^Bay {}^Bed {}^RX8|21^Emergency^HL70007|||C{:07}^Jones^Sarah^^^Dr|||300^General Medicine||||||||I|V{:011}^^^RX8^VN",
        rng.below(40),
        1 + rng.below(6),
        1 + rng.below(20),
        rng.below(10_000_000),
        rng.below(100_000_000_000)
    )
}

/// A base64 body of `len` characters (an embedded PDF or image, as results systems send).
fn base64_blob(rng: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(len);
    for _ in 0..len / 4 * 4 {
        s.push(char::from(ALPHABET[rng.below(64) as usize]));
    }
    s
}

/// A long free-text report: sentences with escapes, joined by `\.br\`.
fn report(rng: &mut Rng, target: usize) -> String {
    let mut s = String::new();
    while s.len() < target {
        if !s.is_empty() {
            s.push_str("\\.br\\");
        }
        s.push_str(rng.pick(NOTES).copied().unwrap_or(""));
    }
    s
}

fn obx_results(rng: &mut Rng, variant: usize) -> Vec<String> {
    let mut out = Vec::new();
    let tests = [
        ("718-7", "Haemoglobin", "g/L", "115-165"),
        ("6690-2", "White cell count", "10*9/L", "4.0-11.0"),
        ("777-3", "Platelets", "10*9/L", "150-400"),
        ("2951-2", "Sodium", "mmol/L", "133-146"),
        ("2823-3", "Potassium", "mmol/L", "3.5-5.3"),
    ];
    for (i, (code, label, unit, range)) in tests.iter().enumerate() {
        out.push(format!(
            "OBX|{}|NM|{code}^{label}^LN||{}.{}|{unit}|{range}|N|||F|||{}",
            i + 1,
            rng.below(200),
            rng.below(10),
            ts(rng)
        ));
    }
    // Sizes spread from none to tens of KB: most results are small, some carry documents.
    let extra = match variant % 8 {
        0 => Some((true, 2 * 1024)),
        1 => Some((false, 1024)),
        2 => Some((true, 8 * 1024)),
        3 => Some((false, 4 * 1024)),
        4 if variant % 16 == 4 => Some((true, 32 * 1024)),
        _ => None,
    };
    if let Some((document, size)) = extra {
        let n = out.len() + 1;
        if document {
            out.push(format!(
                "OBX|{n}|ED|PDF^Report^L||^application^pdf^Base64^{}||||||F",
                base64_blob(rng, size)
            ));
        } else {
            out.push(format!(
                "OBX|{n}|TX|11506-3^Progress note^LN||{}||||||F",
                report(rng, size)
            ));
        }
    }
    out
}

/// A variant of `kind`; the parts are split at MSH-5 (receiving application), MSH-6
/// (receiving facility) and MSH-10 (control id).
pub fn template(kind: Kind, rng: &mut Rng, variant: usize) -> Template {
    let (sender_app, sender_fac) = rng.pick(SENDERS).copied().unwrap_or(("PAS", "RX8"));
    let (mtype, event, structure) = kind.hl7_type();
    let when = ts(rng);
    let mut body: Vec<String> = Vec::new();
    match kind {
        Kind::AdtA01 | Kind::AdtA03 | Kind::AdtA08 => {
            body.push(format!("EVN|{event}|{when}"));
            body.push(pid(rng));
            body.push(format!(
                "NK1|1|{}|SPO^Spouse^HL70063|{}",
                name(rng),
                rng.pick(STREETS).copied().unwrap_or("")
            ));
            body.push(pv1(rng));
            if kind == Kind::AdtA01 {
                body.push("AL1|1|DA|Z88.0^Penicillin^I10|SV|Anaphylaxis".into());
                body.push(format!(
                    "DG1|1|I10|R07.4^Chest pain, unspecified^I10|{}|{when}|A",
                    report(rng, 40)
                ));
            }
            if kind == Kind::AdtA03 {
                body.push(format!("ZU1|{when}|Discharged home|N"));
            }
        }
        Kind::OruR01 => {
            body.push(pid(rng));
            body.push(pv1(rng));
            body.push(format!(
                "OBR|1|RX8{:08}|LAB{:08}|FBC^Full blood count^L|||{when}|||||||{when}||C{:07}^Jones^Sarah^^^Dr||||||{when}||HM|F",
                rng.below(100_000_000),
                rng.below(100_000_000),
                rng.below(10_000_000)
            ));
            body.extend(obx_results(rng, variant));
            body.push(format!("NTE|1|L|{}", report(rng, 60)));
        }
        Kind::OrmO01 => {
            body.push(pid(rng));
            body.push(pv1(rng));
            body.push(format!(
                "ORC|NW|ICE{:08}|||||^^^{when}^^R||{when}|||C{:07}^Jones^Sarah^^^Dr",
                rng.below(100_000_000),
                rng.below(10_000_000)
            ));
            body.push(format!(
                "OBR|1|ICE{:08}||XCHES^Chest X-ray^L|||{when}||||||{}",
                rng.below(100_000_000),
                report(rng, 50)
            ));
        }
        Kind::SiuS12 => {
            body.push(format!(
                "SCH|APT{:08}|APT{:08}|||||ROUTINE^Routine^HL70276|FOLLOWUP|30|MIN|^^30^{when}^{when}",
                rng.below(100_000_000),
                rng.below(100_000_000)
            ));
            body.push(pid(rng));
            body.push(pv1(rng));
            body.push(format!(
                "AIL|1||RX8OPD{:02}^^^RX8|OUTPATIENT^Outpatient clinic",
                rng.below(50)
            ));
            body.push(format!(
                "AIP|1||C{:07}^Patel^Anil^^^Dr|CONSULTANT",
                rng.below(10_000_000)
            ));
        }
        Kind::Itk => {}
    }
    let head = format!("MSH|^~\\&|{sender_app}|{sender_fac}|");
    let middle = format!("|{when}||{mtype}^{event}^{structure}|");
    let mut tail = String::from("|P|2.4|||AL|NE|GBR|UNICODE UTF-8|EN\r");
    for segment in body {
        tail.push_str(&segment);
        tail.push('\r');
    }
    Template {
        parts: vec![
            head.into_bytes(),
            b"|".to_vec(),
            middle.into_bytes(),
            tail.into_bytes(),
        ],
    }
}

/// head, MSH-5, `|`, MSH-6, middle, MSH-10, tail.
pub fn write(
    t: &Template,
    application: &str,
    facility: &str,
    tag: u32,
    seq: u64,
    out: &mut Vec<u8>,
) {
    let part = |i: usize| t.parts.get(i).map(Vec::as_slice).unwrap_or_default();
    out.extend_from_slice(part(0));
    out.extend_from_slice(application.as_bytes());
    out.extend_from_slice(part(1));
    out.extend_from_slice(facility.as_bytes());
    out.extend_from_slice(part(2));
    out.extend_from_slice(ids::control_id(tag, seq).as_bytes());
    out.extend_from_slice(part(3));
}

/// Makes `message` (one whole HL7v2 message, as [`write`] left it) about patient `id`: its PID-3
/// becomes `id` as an NHS number, the one identifier the router orders by. Returns false when
/// the message has no PID segment (it is left as it was).
pub fn set_patient(message: &mut Vec<u8>, id: &str) -> bool {
    let Some(segment) = memchr::memmem::find(message, b"\rPID|").map(|at| at + 1) else {
        return false;
    };
    // PID-3 starts after the third `|` of the segment and ends at the next `|` or `\r`.
    let mut bars = memchr::memchr_iter(b'|', &message[segment..]).map(|at| segment + at);
    let Some(start) = bars.nth(2).map(|at| at + 1) else {
        return false;
    };
    let end = message[start..]
        .iter()
        .position(|&b| b == b'|' || b == b'\r')
        .map_or(message.len(), |len| start + len);
    let value = format!("{id}^^^NHS^NH");
    message.splice(start..end, value.bytes());
    true
}

//! Routing a parsed message allocates nothing: the decision's endpoint list is inline (up to
//! four), values are borrowed from the message, and the per-message value cache is on the stack.
//! Counted with dhat's heap statistics over a thousand routings of each kind of message.
use std::path::Path;

use router::config::load_str;
use router::routes::message::{Hl7View, ItkView};
use router::routes::{Decision, Outcome};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const CSV: &str = "id,protocol,address,hl7_facility,itk_address,ods\n\
a,mllp,a:1,RX8,,\n\
b,mllp,b:1,J82001,,\n\
c,itk-http,http://c/,,urn:nhs-uk:addressing:ods:J82001,J82001\n\
d,itk-http,http://d/,,urn:nhs-uk:addressing:ods:RX8:WARD12,RX8\n";

const TOML: &str = "[directory]\nfile = \"endpoints.csv\"\n\
[[route]]\nhl7.sending_application = \"ZZ*\"\nreject = \"test\"\n\
[[route]]\nhl7.processing_id = { not = \"P\" }\ndrop = true\n\
[[route]]\nhl7.message_type = \"ADT\"\nhl7.\"PID-3.4\" = \"NHS\"\nto = \"b\"\ncontinue = true\n\
[[route]]\nto = { lookup = \"hl7.receiving_facility\" }\n\
[[route]]\nitk.service = \"urn:nhs-itk:services:201005:*\"\nto = { lookup = \"itk.address.ods\" }\n";

const ADT: &[u8] = b"MSH|^~\\&|PAS|RX8|EPR|RX8|20261125093015||ADT^A01^ADT_A01|MSG1|P|2.4\r\
PID|1||9449305552^^^NHS^NH||O'NEIL^Siobhan||19620314|F\r";

const ITK: &[u8] = br#"<itk:DistributionEnvelope xmlns:itk="urn:nhs-itk:ns:201005">
<itk:header service="urn:nhs-itk:services:201005:SendCDADocument-v2-0" trackingid="7D6C5B4A-3928-4716-A5B4-C3D2E1F00A1B">
<itk:addresslist><itk:address uri="urn:nhs-uk:addressing:ods:J82001"/><itk:address uri="urn:nhs-uk:addressing:ods:RX8:WARD12"/></itk:addresslist>
<itk:manifest count="1"><itk:manifestitem id="uuid_0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D" mimetype="text/xml"/></itk:manifest>
</itk:header>
<itk:payloads count="1"><itk:payload id="uuid_0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"><x/></itk:payload></itk:payloads>
</itk:DistributionEnvelope>"#;

#[test]
fn routing_a_parsed_message_allocates_nothing() {
    // A failed dhat assertion writes its profile: into the temp dir, not the source tree.
    let _profiler = dhat::Profiler::builder()
        .testing()
        .file_name(std::env::temp_dir().join("ganglion-routes-alloc-dhat.json"))
        .build();
    let dir = std::env::temp_dir().join(format!("ganglion-routes-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the temp dir is writable");
    std::fs::write(dir.join("endpoints.csv"), CSV).expect("the temp dir is writable");
    let (table, _) = load_str(&dir.join("routes.toml"), TOML).unwrap_or_else(|d| panic!("{d:#?}"));
    let _ = std::fs::remove_dir_all(Path::new(&dir));

    let hl7 = Hl7View::parse(ADT).unwrap_or_else(|e| panic!("{e}"));
    let itk = ItkView::parse(ITK).unwrap_or_else(|e| panic!("{e}"));
    let mut d = Decision::default();
    // The expected decisions, worked out from the rules above: the ADT goes to b (continue)
    // and, by MSH-6 RX8, to a; the ITK message to the ODS codes J82001 (c) and RX8 (d).
    table.route(&hl7, &mut d);
    let names = |d: &Decision| -> Vec<String> {
        d.endpoints
            .iter()
            .filter_map(|&e| table.endpoint(e))
            .map(|e| e.name.clone())
            .collect()
    };
    assert_eq!(
        (d.outcome, names(&d)),
        (Outcome::Deliver, vec!["b".to_owned(), "a".to_owned()])
    );
    table.route(&itk, &mut d);
    assert_eq!(
        (d.outcome, names(&d)),
        (Outcome::Deliver, vec!["c".to_owned(), "d".to_owned()])
    );

    let before = dhat::HeapStats::get();
    for _ in 0..1000 {
        table.route(&hl7, &mut d);
        table.route(&itk, &mut d);
    }
    let after = dhat::HeapStats::get();
    dhat::assert_eq!(after.total_blocks, before.total_blocks);
}

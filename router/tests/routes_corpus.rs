//! Every message of the shared sample corpus through the shipped `routes.toml`: routing never
//! panics on real (and deliberately broken) messages, and `explain` reaches the same decision
//! as the indexed matcher for each one. The corpus is read in place from `../shared/corpus`
//! (or `$GANGLION_CORPUS`); without it the test says so and passes, except in CI.
use std::path::Path;

use router::config::load;
use router::inspect::find_messages;
use router::routes::{Decision, ParsedMessage};

#[test]
fn corpus_messages_route_the_same_with_and_without_the_index() {
    let Some(dir) = corpus::find() else {
        return;
    };
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../routes.toml");
    let (table, _) = load(&config).unwrap_or_else(|d| panic!("the shipped config loads: {d:#?}"));
    let mut all = Vec::new();
    for sub in ["hl7v2", "malformed", "itk"] {
        all.extend(corpus::files(&dir.join(sub)));
    }
    let mut routed = 0;
    let mut d = Decision::default();
    for path in &all {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        for found in find_messages(&bytes) {
            let Ok(item) = &found.item else { continue };
            let Ok(msg) = ParsedMessage::parse(item) else {
                continue;
            };
            table.route(&msg, &mut d);
            let explained = table.explain(&msg);
            assert_eq!(explained.decision, d, "{}", path.display());
            routed += 1;
        }
    }
    // The corpus holds well over a hundred readable HL7v2 and ITK messages.
    assert!(
        routed > 100,
        "only {routed} messages routed from {}",
        dir.display()
    );
}

use super::*;
use codecs::hl7v2::Message;

fn all_kinds() -> Mix {
    Mix {
        weights: Kind::ALL.iter().map(|k| (*k, 1)).collect(),
    }
}

fn one(gen: &Generator, kind: Kind, rng: &mut Rng, seq: u64) -> Vec<u8> {
    let t = gen.variant(kind, rng).expect("kind in the mix");
    let mut out = Vec::new();
    let dest = if kind.is_itk() {
        Dest::Itk {
            address: "urn:nhs-uk:addressing:ods:E00042",
        }
    } else {
        Dest::Hl7 {
            application: "",
            facility: "F00042",
        }
    };
    Generator::write(t, kind, dest, 0xC0FFEE, seq, &mut out);
    out
}

#[test]
fn every_hl7_variant_parses_validates_and_carries_the_chosen_msh_values() {
    let gen = Generator::new(11, &all_kinds());
    let mut rng = Rng::new(3);
    for kind in Kind::ALL.into_iter().filter(|k| !k.is_itk()) {
        for seq in 0..(VARIANTS as u64 * 2) {
            let bytes = one(&gen, kind, &mut rng, seq);
            let message = Message::parse(&bytes).expect("generated message parses");
            message.validate().expect("generated message validates");
            let msh = message.msh();
            let (mtype, event, _) = kind.hl7_type();
            assert_eq!(msh.receiving_facility(), Some(&b"F00042"[..]));
            assert_eq!(msh.receiving_application(), None);
            assert_eq!(msh.message_type(), Some(mtype.as_bytes()));
            assert_eq!(msh.trigger_event(), Some(event.as_bytes()));
            let id = crate::ids::control_id(0xC0FFEE, seq);
            assert_eq!(msh.control_id(), Some(id.as_bytes()));
            assert_eq!(msh.charset(), Some(&b"UNICODE UTF-8"[..]));
        }
    }
}

#[test]
fn results_range_from_small_to_tens_of_kilobytes_with_escapes_and_non_ascii_names() {
    let gen = Generator::new(5, &all_kinds());
    let mut rng = Rng::new(9);
    let sizes: Vec<usize> = (0..400)
        .map(|s| one(&gen, Kind::OruR01, &mut rng, s).len())
        .collect();
    assert!(sizes.iter().any(|&n| n < 2_000), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n > 30_000), "{sizes:?}");
    let mut all = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| !k.is_itk()) {
        for s in 0..200 {
            all.extend(one(&gen, kind, &mut rng, s));
        }
    }
    let text = String::from_utf8(all).expect("UTF-8");
    assert!(text.contains("\\T\\") && text.contains("\\.br\\") && text.contains("\\F\\"));
    assert!(!text.is_ascii());
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let mix = Mix::realistic();
    let a = Generator::new(42, &mix);
    let b = Generator::new(42, &mix);
    let c = Generator::new(43, &mix);
    let (mut ra, mut rb, mut rc) = (Rng::new(1), Rng::new(1), Rng::new(1));
    let mut differs = false;
    for seq in 0..50 {
        let kind = mix.pick(&mut ra);
        assert_eq!(kind, mix.pick(&mut rb));
        let _ = mix.pick(&mut rc);
        let x = one(&a, kind, &mut ra, seq);
        assert_eq!(x, one(&b, kind, &mut rb, seq));
        differs |= x != one(&c, kind, &mut rc, seq);
    }
    assert!(differs);
}

#[test]
fn itk_requests_pass_the_strict_checks_and_carry_their_address_and_ids() {
    let gen = Generator::new(8, &all_kinds());
    let mut rng = Rng::new(2);
    for seq in 0..(VARIANTS as u64 * 2) {
        let bytes = one(&gen, Kind::Itk, &mut rng, seq);
        let message = codecs::itk::parse(&bytes).expect("ITK request parses");
        message.check_strict().expect("strict checks");
        let envelope = &message.envelope;
        let id = crate::ids::uuid(0xC0FFEE, seq);
        assert_eq!(envelope.tracking_id.raw(), id.as_bytes());
        assert_eq!(itk::tracking_id(&bytes), Some(id.as_bytes()));
        let addresses: Vec<&[u8]> = envelope.addresses.iter().map(|a| a.uri.raw()).collect();
        assert_eq!(addresses, vec![&b"urn:nhs-uk:addressing:ods:E00042"[..]]);
    }
}

#[test]
fn mixes_parse_and_refuse_unknown_kinds() {
    let mix = Mix::parse("adt-a01=3,itk").unwrap();
    assert_eq!(mix.weights, vec![(Kind::AdtA01, 3), (Kind::Itk, 1)]);
    assert!(Mix::parse("adt-a99=1").is_err());
    assert!(!Mix::parse("hl7").unwrap().has(Kind::Itk));
}

#[test]
fn set_patient_rewrites_pid_3_alone_in_every_hl7_kind() {
    let gen = Generator::new(5, &all_kinds());
    let mut rng = Rng::new(9);
    for kind in Kind::ALL.into_iter().filter(|k| !k.is_itk()) {
        for seq in 0..VARIANTS as u64 {
            let before = one(&gen, kind, &mut rng, seq);
            let mut after = before.clone();
            assert!(hl7::set_patient(&mut after, "9000000042"), "{kind:?}");
            let (old, new) = (
                Message::parse(&before).expect("generated message parses"),
                Message::parse(&after).expect("rewritten message parses"),
            );
            new.validate().expect("rewritten message validates");
            let pid = |m: &Message<'_>, n: usize| {
                m.segment(b"PID")
                    .and_then(|s| s.field(n))
                    .map(|f| f.raw().to_vec())
            };
            assert_eq!(pid(&new, 3), Some(b"9000000042^^^NHS^NH".to_vec()));
            for n in [1, 2, 5, 7, 8] {
                assert_eq!(pid(&new, n), pid(&old, n), "{kind:?} PID-{n}");
            }
            assert_eq!(new.msh().control_id(), old.msh().control_id());
        }
    }
    let mut no_pid = b"MSH|^~\\&|A|B|C|D|20261101||ACK|1|P|2.4\rMSA|AA|1\r".to_vec();
    let unchanged = no_pid.clone();
    assert!(!hl7::set_patient(&mut no_pid, "9000000042"));
    assert_eq!(no_pid, unchanged);
}

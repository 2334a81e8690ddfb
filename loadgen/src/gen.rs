//! Seeded, realistic traffic: HL7v2 ADT^A01/A03/A08, ORU^R01, ORM^O01 and SIU^S12, and ITK
//! SOAP requests, in a mix of kinds and sizes (multi-KB OBX payloads, escape sequences,
//! non-ASCII names in UTF-8).
//!
//! Building a varied message costs far more than sending it, so [`Generator::new`] builds a
//! pool of variants per kind once, split around the values that change per message
//! (receiving facility, control id, ITK address). [`Generator::write`] then only copies
//! slices. Everything follows from the seed: the same seed gives the same bytes.
pub mod hl7;
pub mod itk;

use crate::rng::Rng;

/// A kind of message in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    AdtA01,
    AdtA03,
    AdtA08,
    OruR01,
    OrmO01,
    SiuS12,
    Itk,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::AdtA01,
        Kind::AdtA03,
        Kind::AdtA08,
        Kind::OruR01,
        Kind::OrmO01,
        Kind::SiuS12,
        Kind::Itk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::AdtA01 => "adt-a01",
            Kind::AdtA03 => "adt-a03",
            Kind::AdtA08 => "adt-a08",
            Kind::OruR01 => "oru-r01",
            Kind::OrmO01 => "orm-o01",
            Kind::SiuS12 => "siu-s12",
            Kind::Itk => "itk",
        }
    }

    pub fn is_itk(self) -> bool {
        self == Kind::Itk
    }

    /// MSH-9 components: message type, trigger event, structure.
    pub fn hl7_type(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::AdtA01 => ("ADT", "A01", "ADT_A01"),
            Kind::AdtA03 => ("ADT", "A03", "ADT_A03"),
            Kind::AdtA08 => ("ADT", "A08", "ADT_A01"),
            Kind::OruR01 => ("ORU", "R01", "ORU_R01"),
            Kind::OrmO01 => ("ORM", "O01", "ORM_O01"),
            Kind::SiuS12 => ("SIU", "S12", "SIU_S12"),
            Kind::Itk => ("", "", ""),
        }
    }
}

/// Weights of each kind: `adt-a01=20,oru-r01=25,itk=5`. A kind left out is not sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    pub weights: Vec<(Kind, u32)>,
}

impl Mix {
    /// Roughly what an acute trust's integration engine carries: ADT updates and results
    /// dominate, orders and appointments follow, and a share arrives as ITK.
    pub fn realistic() -> Mix {
        Mix {
            weights: vec![
                (Kind::AdtA01, 10),
                (Kind::AdtA03, 8),
                (Kind::AdtA08, 30),
                (Kind::OruR01, 30),
                (Kind::OrmO01, 8),
                (Kind::SiuS12, 6),
                (Kind::Itk, 8),
            ],
        }
    }

    /// Parses `kind=weight,…` (a bare kind weighs 1), or `realistic`, or `hl7` (the realistic
    /// mix without ITK).
    pub fn parse(text: &str) -> Result<Mix, String> {
        match text.trim() {
            "realistic" | "" => return Ok(Mix::realistic()),
            "hl7" => return Ok(Mix::realistic().without(Kind::Itk)),
            _ => {}
        }
        let mut weights = Vec::new();
        for part in text.split(',') {
            let (name, weight) = match part.split_once('=') {
                Some((n, w)) => (
                    n.trim(),
                    w.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("bad weight in {part:?}"))?,
                ),
                None => (part.trim(), 1),
            };
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown message kind {name:?}; known: {}",
                        Kind::ALL.map(Kind::name).join(", ")
                    )
                })?;
            if weight > 0 {
                weights.push((kind, weight));
            }
        }
        if weights.is_empty() {
            return Err("the mix sends nothing".into());
        }
        Ok(Mix { weights })
    }

    pub fn without(mut self, kind: Kind) -> Mix {
        self.weights.retain(|(k, _)| *k != kind);
        self
    }

    pub fn has(&self, kind: Kind) -> bool {
        self.weights.iter().any(|(k, _)| *k == kind)
    }

    pub fn has_hl7(&self) -> bool {
        self.weights.iter().any(|(k, _)| !k.is_itk())
    }

    /// Draws a kind.
    pub fn pick(&self, rng: &mut Rng) -> Kind {
        let total: u64 = self.weights.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = rng.below(total);
        for (kind, w) in &self.weights {
            if x < u64::from(*w) {
                return *kind;
            }
            x -= u64::from(*w);
        }
        Kind::AdtA08
    }

    pub fn describe(&self) -> String {
        self.weights
            .iter()
            .map(|(k, w)| format!("{}={w}", k.name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One prepared message, split around its per-message values.
#[derive(Clone, Debug)]
pub struct Template {
    /// Constant pieces; the values go between them, in the order of the kind's writer.
    pub parts: Vec<Vec<u8>>,
}

impl Template {
    pub fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where one message goes.
#[derive(Clone, Copy, Debug)]
pub enum Dest<'a> {
    /// An HL7v2 endpoint: MSH-5 and MSH-6.
    Hl7 {
        application: &'a str,
        facility: &'a str,
    },
    /// An ITK endpoint's address (`urn:nhs-uk:addressing:ods:…`).
    Itk { address: &'a str },
}

/// Pools of variants per kind.
pub struct Generator {
    pools: Vec<(Kind, Vec<Template>)>,
}

/// Variants built per kind: enough that sizes and contents vary, few enough to build fast.
pub const VARIANTS: usize = 48;

impl Generator {
    pub fn new(seed: u64, mix: &Mix) -> Generator {
        let mut pools = Vec::new();
        for (i, (kind, _)) in mix.weights.iter().enumerate() {
            let mut rng = Rng::derive(seed, 0x6E6E + i as u64);
            let pool = (0..VARIANTS)
                .map(|v| match kind {
                    Kind::Itk => itk::template(&mut rng, v),
                    k => hl7::template(*k, &mut rng, v),
                })
                .collect();
            pools.push((*kind, pool));
        }
        Generator { pools }
    }

    /// A variant of `kind` (`None` when the mix has no such kind).
    pub fn variant(&self, kind: Kind, rng: &mut Rng) -> Option<&Template> {
        let (_, pool) = self.pools.iter().find(|(k, _)| *k == kind)?;
        rng.pick(pool)
    }

    /// Writes one whole message (no MLLP framing, no HTTP head) into `out`.
    pub fn write(
        template: &Template,
        kind: Kind,
        dest: Dest<'_>,
        tag: u32,
        seq: u64,
        out: &mut Vec<u8>,
    ) {
        match (kind, dest) {
            (Kind::Itk, Dest::Itk { address }) => itk::write(template, address, tag, seq, out),
            (
                _,
                Dest::Hl7 {
                    application,
                    facility,
                },
            ) => hl7::write(template, application, facility, tag, seq, out),
            // A mismatch is a caller's bug; writing the template with empty values keeps the
            // run going and the router will answer it as unroutable.
            (_, _) => hl7::write(template, "", "", tag, seq, out),
        }
    }
}

#[cfg(test)]
mod tests;

//! Writing families through prometheus-client's OpenMetrics text encoder. The figures are
//! read from atomics at scrape time (summed over shards where a family has no `shard` label),
//! so these helpers take plain values: a family's descriptor, then one sample per label set.
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::histogram::Snapshot;

fn descriptor<'s>(
    enc: &'s mut DescriptorEncoder,
    name: &'s str,
    help: &str,
    unit: Option<&'s Unit>,
    kind: MetricType,
) -> Result<MetricEncoder<'s>, fmt::Error> {
    enc.encode_descriptor(name, help, unit, kind)
}

/// A counter family of one sample. `name` without `_total`, which the encoder adds.
pub fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    descriptor(enc, name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// A gauge family of one sample.
pub fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> fmt::Result {
    descriptor(enc, name, help, None, MetricType::Gauge)?.encode_gauge(&value)
}

/// A counter family with a sample per label set. `unit`, when given, is appended to `name`.
pub fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = descriptor(enc, name, help, unit, MetricType::Counter)?;
    for (labels, value) in rows {
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

/// A gauge family with a sample per label set.
pub fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut family = descriptor(enc, name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// A histogram family in seconds (`name` without `_seconds`), a histogram per label set.
pub fn histograms<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, Snapshot)>,
) -> fmt::Result {
    let mut family = descriptor(enc, name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in rows {
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)?;
    }
    Ok(())
}

/// A histogram family in seconds with one histogram and no labels.
pub fn histogram(enc: &mut DescriptorEncoder, name: &str, help: &str, h: &Snapshot) -> fmt::Result {
    descriptor(enc, name, help, Some(&Unit::Seconds), MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)
}

/// A collector made of a function that writes families: what is scraped is read when the
/// registry is encoded, from whatever the function holds.
struct Families<F>(F);

impl<F> fmt::Debug for Families<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Families")
    }
}

impl<F> Collector for Families<F>
where
    F: Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        (self.0)(&mut encoder)
    }
}

/// The OpenMetrics text of the families `write` writes, `# EOF` at the end.
pub fn text<F>(write: F) -> Result<String, fmt::Error>
where
    F: Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
{
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(write)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// The content type of [`text`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

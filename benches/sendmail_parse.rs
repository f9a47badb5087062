//! Throughput of the sendmail parsers over the fixture corpus: classification alone,
//! classification plus the `parse maillog` JSON line, aggregation, and `mailq` parsing.
//! `bench/parse-vs-grep.sh` measures the whole binary against grep on a 200 MB file.

use std::hint::black_box;

use cabal_triage::sendmail::{
    aggregate_lines, classify_line, parse_mailq, AggregateOptions, ProviderTable,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CORPUS: &[&str] = &[
    include_str!("../tests/fixtures/maillog/recorded-providers.log"),
    include_str!("../tests/fixtures/maillog/recorded-host-unknown.log"),
    include_str!("../tests/fixtures/maillog/source-formats.log"),
    include_str!("../tests/fixtures/maillog/noise.log"),
];
const MAILQ: &str = include_str!("../tests/fixtures/mailq/debian-sections.txt");

fn lines() -> Vec<&'static str> {
    CORPUS.iter().flat_map(|c| c.lines()).collect()
}

fn bench(c: &mut Criterion) {
    let table = ProviderTable::builtin();
    let lines = lines();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let deliveries = lines
        .iter()
        .filter(|l| classify_line(l, &table).is_some())
        .count();

    let mut group = c.benchmark_group("maillog");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("classify", |b| {
        b.iter(|| {
            let mut n = 0;
            for line in &lines {
                if classify_line(black_box(line), &table).is_some() {
                    n += 1;
                }
            }
            assert_eq!(n, deliveries);
        })
    });
    let mut out = Vec::with_capacity(1 << 20);
    group.bench_function("classify_and_json", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                if let Some(d) = classify_line(black_box(line), &table) {
                    serde_json::to_writer(&mut out, &d).unwrap();
                    out.push(b'\n');
                }
            }
            black_box(&out);
        })
    });
    group.bench_function("aggregate", |b| {
        b.iter(|| aggregate_lines(lines.iter().copied(), &table, AggregateOptions::default()))
    });
    group.finish();

    let mut group = c.benchmark_group("mailq");
    group.throughput(Throughput::Bytes(MAILQ.len() as u64));
    group.bench_function("parse", |b| b.iter(|| parse_mailq(black_box(MAILQ))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

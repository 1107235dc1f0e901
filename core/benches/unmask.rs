//! Unmasking throughput: the fast path against its scalar reference (bytes/s).
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wsport_core::mask::{apply_mask, apply_mask_scalar};

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    for size in [64usize, 1024, 16 * 1024, 1 << 20] {
        let mut buf = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("fast", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box([1, 2, 3, 4]), black_box(1)))
        });
        group.bench_with_input(BenchmarkId::new("scalar", size), &size, |b, _| {
            b.iter(|| apply_mask_scalar(black_box(&mut buf), black_box([1, 2, 3, 4]), black_box(1)))
        });
    }
    group.finish();
}

criterion_group!(benches, unmask);
criterion_main!(benches);

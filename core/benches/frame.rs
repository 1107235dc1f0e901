//! Frame header decode and the in-place echo of whole frames, as a server does per read.
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wsport_core::frame::write_frame;
use wsport_core::{FrameHeader, Limits, OpCode, ServerConnection};

fn header_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_decode");
    for len in [64usize, 1024, 70_000] {
        let mut frame = Vec::new();
        write_frame(
            &mut frame,
            true,
            OpCode::Binary,
            Some([1, 2, 3, 4]),
            &vec![0; len],
        );
        group.bench_with_input(BenchmarkId::from_parameter(len), &frame, |b, frame| {
            b.iter(|| FrameHeader::decode(black_box(&frame[..14])))
        });
    }
    group.finish();
}

fn echo_in_place(c: &mut Criterion) {
    let mut group = c.benchmark_group("echo_in_place");
    for (size, count) in [(64usize, 1usize), (64, 16), (1024, 1), (16 * 1024, 1)] {
        let mut stream = Vec::new();
        for _ in 0..count {
            write_frame(
                &mut stream,
                true,
                OpCode::Binary,
                Some([9, 8, 7, 6]),
                &vec![b'x'; size],
            );
        }
        group.throughput(Throughput::Bytes((size * count) as u64));
        let mut buf = Vec::with_capacity(stream.len());
        group.bench_function(
            BenchmarkId::new(format!("{size}B"), format!("{count}frames")),
            |b| {
                b.iter(|| {
                    // A fresh connection per iteration keeps the work identical; it costs nothing.
                    let mut conn = ServerConnection::new(Limits::default());
                    buf.clear();
                    buf.extend_from_slice(&stream);
                    let echo = conn.echo_in_place(&mut buf, 0..0, 0);
                    black_box(echo.output.len())
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, header_decode, echo_in_place);
criterion_main!(benches);

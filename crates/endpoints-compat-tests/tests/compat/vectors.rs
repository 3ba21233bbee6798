//! The conformance vectors are part of `cargo test` too.

#[test]
fn twisted_and_proxy_vectors() {
    let report = endpoints_compat_tests::run(
        &endpoints_compat_tests::default_vector_files(),
        &endpoints_compat_tests::default_deviations_file(),
    )
    .expect("vector files readable");
    let text = report.render();
    assert!(report.ok(), "{text}");
    assert!(report.passed > 50, "suspiciously few vectors ran:\n{text}");
}

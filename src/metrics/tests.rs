//! Tests of the metrics text: escaping, spellings, both formats, gzip, the README list.

use super::*;

#[test]
fn label_values_are_escaped() {
    assert_eq!(
        labels(&[("gateway", "a\\b\"c\nd"), ("x", "y")]),
        r#"gateway="a\\b\"c\nd",x="y""#
    );
}

#[test]
fn values_use_prometheus_spellings() {
    let mut s = String::new();
    for v in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        6500.0,
        240.5,
        -0.62,
    ] {
        write_value(&mut s, v);
        s.push(' ');
    }
    assert_eq!(s, "NaN +Inf -Inf 6500 240.5 -0.62 ");
}

#[test]
fn counters_and_info_follow_each_format() {
    let mut r = Registry::default();
    r.add(&POLLS, labels(&[("result", "success")]), 3.0);
    r.add(&BUILD_INFO, labels(&[("version", "1")]), 1.0);
    r.add(&POLLS, labels(&[("result", "success")]), 4.0);
    let mut p = String::new();
    r.write(&mut p, false);
    assert!(
        p.contains(
            "# TYPE powerwall_polls_total counter\npowerwall_polls_total{result=\"success\"} 3\n"
        ),
        "{p}"
    );
    assert!(p.contains("# TYPE pypowerwall_server_build_info gauge\n"));
    let mut o = String::new();
    r.write(&mut o, true);
    assert!(o.contains("# TYPE powerwall_polls counter\npowerwall_polls_total{"));
    assert!(o.contains("# TYPE pypowerwall_server_build info\npypowerwall_server_build_info{"));
    // The repeated label set was dropped.
    assert_eq!(p.matches("powerwall_polls_total{").count(), 1);
}

#[test]
fn request_classes() {
    let r = Requests::default();
    r.count("docs", 200);
    r.count("docs", 404);
    r.count("docs", 999);
    r.count("static", 0);
    assert_eq!(
        r.snapshot(),
        vec![("docs", [0, 1, 0, 1, 1]), ("static", [1, 0, 0, 0, 0])]
    );
}

#[test]
fn gzip_negotiation_and_members() {
    assert!(wants_gzip(Some("gzip")));
    assert!(wants_gzip(Some("deflate, GZIP;q=0.5")));
    assert!(!wants_gzip(Some("gzip;q=0")));
    assert!(!wants_gzip(Some("identity")));
    assert!(!wants_gzip(None));
    let mut two = gzip(b"abc\n", flate2::Compression::default());
    two.extend(stored_member(b"def\n"));
    two.extend(stored_member(b""));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    two.extend(stored_member(&big));
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&two[..]), &mut got).unwrap();
    assert_eq!(&got[..8], b"abc\ndef\n");
    assert_eq!(&got[8..], &big[..]);
}

#[test]
fn gateway_text_is_bounded() {
    assert_eq!(bounded(&"é".repeat(100)).chars().count(), MAX_LABEL);
    assert_eq!(bounded("A1"), "A1");
}

#[test]
fn every_family_is_documented_in_the_readme() {
    let readme = include_str!("../../README.md");
    for d in FAMILIES {
        let shown = match d.kind {
            Counter => format!("`{}_total`", d.name),
            Info => format!("`{}_info`", d.name),
            _ => format!("`{}`", d.name),
        };
        assert!(readme.contains(&shown), "README lacks {shown}");
    }
}

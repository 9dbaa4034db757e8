//! Round trips against what Python's `json` module writes and reads.

use super::*;

#[test]
fn floats_like_python_repr() {
    let cases = [
        (441.0, "441.0"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
        (60.019999999999996, "60.019999999999996"),
        (1e-05, "1e-05"),
        (0.0001, "0.0001"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1.2345678901234568e17, "1.2345678901234568e+17"),
        (24.074074074074073, "24.074074074074073"),
        (-8.731808731808732, "-8.731808731808732"),
        (5383.380000000001, "5383.380000000001"),
        (1.5e-7, "1.5e-07"),
        (123456.789, "123456.789"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Infinity"),
    ];
    for (f, want) in cases {
        assert_eq!(py_float(f), want, "{f:?}");
    }
}

#[test]
fn round_trip_keeps_order_and_types() {
    let text = r#"{"b": 1, "a": [1.0, -0.0, "x\u00e9\ud83d\ude00", null, true], "c": {}}"#;
    let v = parse(text).unwrap();
    assert_eq!(v.to_py(), text);
    assert_eq!(v.get("b"), Some(&Value::Int(1)));
}

#[test]
fn pretty_sorted_like_python() {
    let v = parse(r#"{"b": {"y": 1, "x": []}, "a": [1, {}]}"#).unwrap();
    assert_eq!(
        v.to_py_pretty_sorted(),
        "{\n    \"a\": [\n        1,\n        {}\n    ],\n    \"b\": {\n        \"x\": [],\n        \"y\": 1\n    }\n}"
    );
}

#[test]
fn refuses_bad_input_without_panicking() {
    for bad in [
        "",
        "{",
        "[1,",
        "{\"a\" 1}",
        "\"\\u12",
        "01x",
        "-",
        "1e",
        "[1.]",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    let deep = "[".repeat(MAX_DEPTH + 10);
    assert!(parse(&deep).is_err());
}

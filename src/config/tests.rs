//! Tests of the configuration: environment, flags, files, modes and masks.

use super::*;
use crate::secret::Secret;
use std::collections::HashMap;

fn load_with(vars: &[(&str, &str)], cli: CliOverrides) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load(&|k| map.get(k).cloned(), &cli)
}

#[test]
fn proxy_defaults() {
    let c = load_with(&[], CliOverrides::default()).unwrap();
    assert_eq!(c.server.port, 8675);
    assert_eq!(c.server.bind, "");
    assert_eq!(c.server.style, "clear");
    assert!(c.server.neg_solar);
    assert_eq!(c.server.cache_ttl, 30);
    assert_eq!(c.server.base_url, "/");
    assert!(c.gateways.is_empty());
}

#[test]
fn single_gateway_from_env_and_cli_wins() {
    let c = load_with(
        &[
            ("PW_HOST", "192.168.91.1"),
            ("PW_GW_PWD", "ABCDEFGHIJ"),
            ("PW_PORT", "9000"),
        ],
        CliOverrides {
            port: Some("9100".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.server.port, 9100);
    assert_eq!(c.gateways.len(), 1);
    assert_eq!(c.gateways[0].id, "default");
    assert_eq!(
        c.gateways[0].gw_pwd.as_ref().map(Secret::expose),
        Some("ABCDEFGHIJ")
    );
    assert_eq!(c.gateways[0].poll_interval, Duration::from_secs(5));
}

#[test]
fn mode_follows_the_passwords_given() {
    let c = load_with(
        &[("PW_HOST", "10.0.0.2"), ("PW_PASSWORD", "SECRET1234")],
        CliOverrides::default(),
    )
    .unwrap();
    // One password: TEDAPI first, local if TEDAPI refuses it.
    assert_eq!(c.gateways[0].mode, Mode::Auto);
    assert_eq!(
        c.gateways[0].password.as_ref().map(Secret::expose),
        Some("SECRET1234")
    );
    assert_eq!(c.gateways[0].gw_pwd, None);
    let both = |host: &str| {
        load_with(
            &[
                ("PW_HOST", host),
                ("PW_PASSWORD", "pw"),
                ("PW_GW_PWD", "ABCDEFGHIJ"),
                ("PW_AUTH_MODE", "token"),
                ("PW_EMAIL", "me@example.com"),
            ],
            CliOverrides::default(),
        )
        .unwrap()
        .gateways
        .remove(0)
    };
    let g = both("10.0.0.2");
    assert_eq!(g.mode, Mode::Local);
    assert_eq!(g.auth_mode, AuthMode::Token);
    assert_eq!(g.email, "me@example.com");
    assert_eq!(both("192.168.91.1").mode, Mode::Hybrid);
    assert_eq!(both("192.168.91.1:443").mode, Mode::Hybrid);
    let g = load_with(
        &[("PW_HOST", "10.0.0.2"), ("PW_GW_PWD", "ABCDEFGHIJ")],
        CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(g.gateways[0].mode, Mode::Tedapi);
    assert_eq!(g.gateways[0].auth_mode, AuthMode::Cookie);
    assert_eq!(Mode::Local.proxy_labels().0, "Local");
    assert_eq!(Mode::parse("hybrid"), Some(Mode::Hybrid));
}

#[test]
fn file_mode_key() {
    let c = with_file(
        "modes.yaml",
        "gateways:\n  - {id: a, host: 10.0.0.1, password: x, mode: tedapi}\n  - {id: b, host: 10.0.0.2, password: y, mode: local}\n  - {id: c, host: 10.0.0.3, password: z}\n",
        &[],
    )
    .unwrap();
    let g = &c.gateways;
    assert_eq!(
        (
            g[0].mode,
            g[0].gw_pwd.as_ref().map(Secret::expose),
            g[0].password.as_ref().map(Secret::expose)
        ),
        (Mode::Tedapi, Some("x"), None)
    );
    assert_eq!(
        (g[1].mode, g[1].password.as_ref().map(Secret::expose)),
        (Mode::Local, Some("y"))
    );
    assert_eq!(g[2].mode, Mode::Auto);
    for (text, key) in [
        (
            "gateways:\n  - {id: a, host: 10.0.0.1, gw_pwd: x, mode: local}\n",
            "gateway 'a' password",
        ),
        (
            "gateways:\n  - {id: a, host: 10.0.0.1, gw_pwd: x, mode: cloud}\n",
            "gateway 'a' mode",
        ),
    ] {
        let e = with_file("badmode.yaml", text, &[]).unwrap_err();
        assert!(e.key.contains(key), "{e}");
    }
}

#[test]
fn bad_values_name_the_key() {
    for (vars, key) in [
        (vec![("PW_PORT", "eighty")], "PW_PORT"),
        (vec![("PW_PORT", "70000")], "PW_PORT"),
        (vec![("PW_STYLE", "neon")], "PW_STYLE"),
        (vec![("PW_HTTPS", "maybe")], "PW_HTTPS"),
        (vec![("PW_CACHE_EXPIRE", "x")], "PW_CACHE_EXPIRE"),
        (
            vec![("PW_TEDAPI_API_VERSION", "V1")],
            "PW_TEDAPI_API_VERSION",
        ),
        (
            vec![("PW_HOST", "bad host!"), ("PW_GW_PWD", "x")],
            "PW_HOST",
        ),
        (
            vec![("PW_HOST", "10.0.0.1:0"), ("PW_GW_PWD", "x")],
            "PW_HOST",
        ),
        (vec![("PW_HOST", "10.0.0.1")], "PW_GW_PWD"),
        (vec![("PW_TLS_FINGERPRINT", "abc")], "PW_TLS_FINGERPRINT"),
    ] {
        let err = load_with(&vars, CliOverrides::default()).unwrap_err();
        assert_eq!(err.key, key, "{err}");
    }
    let err = load_with(
        &[],
        CliOverrides {
            port: Some("x".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.key, "--port");
}

#[test]
fn style_accepts_js_suffix_and_base_url_is_normalised() {
    let c = load_with(
        &[("PW_STYLE", "grafana-dark.js"), ("PROXY_BASE_URL", "pp")],
        CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(c.server.style, "grafana-dark");
    assert_eq!(c.server.base_url, "/pp/");
}

fn write_temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ppws-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn with_file(name: &str, text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let path = write_temp(name, text);
    load_with(
        vars,
        CliOverrides {
            config: Some(path),
            ..Default::default()
        },
    )
}

#[test]
fn example_yaml_loads_and_env_overrides_the_file() {
    let text = include_str!("../../deploy/gateways.yaml");
    let c = with_file("example.yaml", text, &[("PW_PORT", "9999")]).unwrap();
    assert_eq!(c.server.port, 9999);
    assert_eq!(c.gateways.len(), 2);
    assert_eq!(c.gateways[0].id, "house");
    assert_eq!(c.gateways[1].poll_interval, Duration::from_secs(10));
    assert_eq!(c.gateways[0].poll_interval, Duration::from_secs(5));
    assert_eq!(c.default_gateway, 0);
    let c = with_file("example2.yaml", text, &[]).unwrap();
    assert_eq!(c.server.port, 8675);
}

#[test]
fn json_file_and_pw_gateways() {
    let c = with_file(
        "c.json",
        r#"{"server": {"port": 9001, "default_gateway": "b"}, "gateways": [{"id": "a", "host": "10.0.0.1", "gw_pwd": "x"}]}"#,
        &[("PW_GATEWAYS", r#"[{"id": "b", "host": "10.0.0.2:8443", "password": "y"}]"#)],
    )
    .unwrap();
    assert_eq!(c.server.port, 9001);
    let ids: Vec<_> = c.gateways.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(c.default_gateway, 1);
    assert_eq!(
        c.gateways[1].password.as_ref().map(Secret::expose),
        Some("y")
    );
    assert_eq!(c.gateways[1].mode, Mode::Auto);
}

#[test]
fn file_errors_name_the_gateway_and_key() {
    let cases = [
        (
            "gateways:\n  - id: a\n    host: 10.0.0.1\n    gw_pwd: x\n    colour: red\n",
            "gateway 'a' colour",
        ),
        ("gateways:\n  - id: a\n    gw_pwd: x\n", "gateway 'a' host"),
        (
            "gateways:\n  - id: a\n    host: 10.0.0.1\n",
            "gateway 'a' gw_pwd",
        ),
        (
            "gateways:\n  - id: a b\n    host: 10.0.0.1\n    gw_pwd: x\n",
            "gateway 'a b' id",
        ),
        ("gateways:\n  - host: 10.0.0.1\n", "gateways[0].id"),
        (
            "gateways:\n  - id: a\n    host: 10.0.0.1\n    gw_pwd: x\n    poll_interval: fast\n",
            "gateway 'a' poll_interval",
        ),
        (
            "gateways:\n  - id: a\n    host: 10.0.0.1\n    gw_pwd: x\n    cloud_mode: maybe\n",
            "gateway 'a' cloud_mode",
        ),
        (
            "gateways:\n  - id: a\n    cloud_mode: true\n    siteid: abc\n",
            "gateway 'a' siteid",
        ),
        ("server:\n  prot: 1\n", "server.prot"),
        ("server:\n  port: http\n", "server.port"),
        ("servers: {}\n", "servers"),
        ("gateways: [\n", "bad.yaml"),
    ];
    for (text, key) in cases {
        let err = with_file("bad.yaml", text, &[]).unwrap_err();
        assert!(err.key.contains(key), "{text:?}: got {err}");
    }
    let dup = "gateways:\n  - {id: a, host: 10.0.0.1, gw_pwd: x}\n  - {id: a, host: 10.0.0.2, gw_pwd: y}\n";
    let err = with_file("dup.yaml", dup, &[]).unwrap_err();
    assert!(err.message.contains("unique"), "{err}");
    let err = load_with(&[("PW_GATEWAYS", "{")], CliOverrides::default()).unwrap_err();
    assert_eq!(err.key, "PW_GATEWAYS");
    let err = load_with(&[("PW_DEFAULT_GATEWAY", "nope")], CliOverrides::default()).unwrap_err();
    assert_eq!(err.key, "PW_DEFAULT_GATEWAY");
}

#[test]
fn masks_secrets_without_their_length() {
    assert_eq!(mask(&Secret::new("ABCDEFGHIJ")), "********");
    assert_eq!(mask(&Secret::new("x")), "********");
}

#[test]
fn a_whitespace_secret_is_refused_naming_the_key() {
    for v in [" ", "\t", "  \n "] {
        let err = load_with(&[("PW_CONTROL_SECRET", v)], CliOverrides::default()).unwrap_err();
        assert_eq!(err.key, "PW_CONTROL_SECRET", "{v:?}");
        let err = load_with(
            &[("CONTROL_ENABLED", "true"), ("CONTROL_TOKEN", v)],
            CliOverrides::default(),
        )
        .unwrap_err();
        assert_eq!(err.key, "CONTROL_TOKEN", "{v:?}");
    }
    assert!(load_with(&[("PW_CONTROL_SECRET", "s3cret")], CliOverrides::default()).is_ok());
}

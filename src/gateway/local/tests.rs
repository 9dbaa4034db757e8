//! Tests of local mode: the client's caches and pauses, forwarding, the auto choice.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::AuthMode;
use crate::gateway::native::form_encode;
use crate::secret::Secret;

use super::*;

#[test]
fn hybrid_only_at_the_gateway_wifi_address() {
    assert!(hybrid_host("192.168.91.1"));
    assert!(hybrid_host("192.168.91.1:443"));
    assert!(!hybrid_host("192.168.91.1:8443"));
    assert!(!hybrid_host("10.0.0.5"));
}

#[test]
fn form_encoding_like_python() {
    assert_eq!(form_encode("p@ss w&rd"), "p%40ss+w%26rd");
    assert_eq!(form_encode("email@example.com"), "email%40example.com");
}

#[test]
fn debug_hides_secrets() {
    let opts = LocalOptions {
        host: "gw".into(),
        password: "SECRETPW".into(),
        email: "a@b".into(),
        auth_mode: AuthMode::Cookie,
        timeout: Duration::from_secs(1),
        pin: None,
    };
    assert!(!format!("{opts:?}").contains("SECRETPW"));
    let c = LocalClient::new(opts).unwrap();
    assert!(!format!("{c:?}").contains("SECRETPW"));
}

#[test]
fn forwarder_never_forwards_api_paths_or_without_login() {
    let c = LocalClient::new(LocalOptions {
        host: "127.0.0.1:9".into(),
        password: Secret::default(),
        email: String::new(),
        auth_mode: AuthMode::Cookie,
        timeout: Duration::from_millis(200),
        pin: None,
    })
    .unwrap();
    let f = c.forwarder();
    assert_eq!(
        f.get("/battery"),
        Err(ForwardError::NotForwarded),
        "no login"
    );
    f.set(Some(Auth::Cookie("AuthCookie=x; UserRecord=y".into())));
    for p in [
        "/api/status",
        "/api",
        "/x/../api/customer",
        "/./api/customer",
        "/x/.%2e/api/customer",
        "/x/%2E%2E/api/customer",
        "//api/customer",
        "/API/customer",
        "/%61pi/customer",
    ] {
        assert_eq!(f.get(p), Err(ForwardError::NotForwarded), "{p}");
    }
    for p in [
        "battery",
        "/..",
        "/%2e%2e/api/devices/vitals",
        "/a/../../api",
        "/a%2fb",
        "/a%5Cb",
        "/a\\b",
        "/a%00b",
        "/a%0d%0aX:1",
        "/a%zz",
        "/a%2",
        "/a%ff",
        "/a%252e%252e/api",
    ] {
        assert!(
            matches!(f.get(p), Err(ForwardError::BadPath(_))),
            "{p}: {:?}",
            f.get(p)
        );
    }
    // Refused connection: Failed, and the in-flight counter is released.
    assert_eq!(f.get("/battery"), Err(ForwardError::Failed));
    assert_eq!(f.in_flight.load(Ordering::SeqCst), 0);
}

#[test]
fn forward_paths_are_normalised_and_reencoded() {
    for (raw, want) in [
        ("/", "/"),
        ("/battery", "/battery"),
        ("/a/./b/../c", "/a/c"),
        ("/a//b/", "/a/b/"),
        ("/a%20b.png", "/a%20b.png"),
        ("/%41", "/A"),
        ("/x/%2e%2e/y", "/y"),
        ("/caf%C3%A9", "/caf%C3%A9"),
    ] {
        assert_eq!(forward_path(raw).as_deref(), Ok(want), "{raw}");
    }
    assert!(is_api_path("/api"));
    assert!(is_api_path("/Api/x"));
    assert!(!is_api_path("/apix"));
}

#[test]
fn token_bucket_bounds_the_rate() {
    let start = Instant::now();
    let mut b = TokenBucket::new(10.0);
    b.last = start;
    let burst = (0..50).filter(|_| b.take(start)).count();
    assert_eq!(burst, 10);
    // One more token per 100 ms.
    assert!(b.take(start + Duration::from_millis(100)));
    assert!(!b.take(start + Duration::from_millis(100)));
    // A long idle time stores no more than the burst.
    let later = start + Duration::from_secs(60);
    assert_eq!((0..50).filter(|_| b.take(later)).count(), 10);
}

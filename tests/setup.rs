//! `pypowerwall-server setup` (the real binary) against a fake Tesla SSO + Owner API on
//! 127.0.0.1 (HTTP/2 only): authorize → code → token exchange with PKCE checked, the site
//! picked, the files written in pypowerwall's format (0600), then the server runs from them and
//! pypowerwall 0.22.2 reads them; and every clear error: wrong state, a pasted text that is not
//! the URL, a refused (expired or used) code, no site, an unwritable directory.
#![cfg(feature = "cloud")]

mod fake_cloud;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fake_cloud::*;
use pypowerwall_server::cloud::http2::H2;
use pypowerwall_server::cloud::transport::{Request, Transport};
use pypowerwall_server::json::{self, Value};

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn command(fake: &FakeCloud, authpath: &Path, ca: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pypowerwall-server"));
    c.args(args)
        .env_clear()
        .env("PW_AUTH_PATH", authpath)
        .env("PW_CLOUD_AUTH_URL", fake.url())
        .env("PW_CLOUD_OWNER_URL", fake.url())
        .env("PW_CLOUD_CA", ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The "browser": opens the authorize URL at the fake SSO; the final URL it lands on.
fn login(fake: &FakeCloud, url: &str) -> String {
    let mut h2 = H2::new(fake.cert_pem.as_bytes()).unwrap();
    let r = h2
        .send(
            &Request {
                method: "GET",
                url,
                headers: vec![],
                body: b"",
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    String::from_utf8(r.body).unwrap()
}

/// Runs `setup` interactively: reads the authorize URL it prints, and answers with
/// `answer(final URL after login)` on stdin.
fn setup(
    fake: &FakeCloud,
    authpath: &Path,
    ca: &Path,
    args: &[&str],
    answer: impl Fn(&str) -> String,
) -> Run {
    let mut child = command(fake, authpath, ca, args).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut url = None;
    for _ in 0..20 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.starts_with(&format!("{}oauth2/v3/authorize?", fake.url())) {
            url = Some(line.trim().to_string());
            break;
        }
    }
    if let Some(u) = url {
        let stdin_text = answer(&login(fake, &u));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin_text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    out.read_to_string(&mut seen).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let ok = child.wait().unwrap().success();
    Run {
        ok,
        stdout: seen,
        stderr,
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI: the pypowerwall virtualenv is missing; run scripts/test-deps.sh");
    }
    eprintln!("skipping the pypowerwall part: run scripts/test-deps.sh");
    None
}

#[test]
fn setup_logs_in_writes_pypowerwall_files_and_the_server_runs_from_them() {
    let fake = FakeCloud::start("unused-access", "unused-refresh");
    fake.state().second_site = true;
    let dir = temp_dir("setup-ok");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &fake.cert_pem).unwrap();
    // Another account's entry is kept.
    std::fs::write(
        dir.join(".pypowerwall.auth"),
        r#"{"other@example.com": {"url": "https://auth.tesla.com/", "sso": {"access_token": "o", "refresh_token": "r"}}}"#,
    )
    .unwrap();

    // `--setup` (the Python server's flag); the second site is chosen at the prompt.
    let run = setup(&fake, &dir, &ca, &["--setup"], |final_url| {
        format!("{final_url}\n2\n")
    });
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Fake Home") && run.stdout.contains("Fake Cabin"));
    assert!(!run.stdout.contains("access-") && !run.stdout.contains("refresh-"));
    {
        let st = fake.state();
        assert_eq!(st.pkce_failures, 0);
        assert_eq!(st.codes.len(), 1);
        assert!(st.codes[0].2, "the code was exchanged");
    }

    // pypowerwall's format: teslapy's cache keyed by e-mail (from the id_token), the site id
    // as text; both 0600.
    let auth_path = dir.join(".pypowerwall.auth");
    let site_path = dir.join(".pypowerwall.site");
    assert_eq!((mode(&auth_path), mode(&site_path)), (0o600, 0o600));
    assert_eq!(
        std::fs::read_to_string(&site_path).unwrap(),
        (SITE_ID + 1).to_string()
    );
    let doc = json::parse(&std::fs::read_to_string(&auth_path).unwrap()).unwrap();
    assert!(doc.get("other@example.com").is_some());
    let entry = doc.get(EMAIL).expect("entry of the account");
    assert_eq!(
        entry.get("url").and_then(Value::as_str),
        Some(fake.url().as_str())
    );
    let sso = entry.get("sso").unwrap();
    let access = sso
        .get("access_token")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    assert!(access.starts_with("access-"));
    assert!(sso
        .get("refresh_token")
        .and_then(Value::as_str)
        .unwrap()
        .starts_with("refresh-"));
    assert_eq!(
        sso.get("token_type").and_then(Value::as_str),
        Some("Bearer")
    );
    assert_eq!(sso.get("expires_in").and_then(Value::as_i64), Some(28800));
    let expires_at = sso.get("expires_at").and_then(Value::as_i64).unwrap();
    assert!((expires_at - (now() + 28800)).abs() < 60);
    assert!(sso.get("id_token").is_some());

    // The server runs from these files (cloud mode: no PW_HOST), on the chosen site. The file
    // holds two accounts, so the e-mail picks the entry (as pypowerwall's `email` does).
    fake.clear_calls();
    let app = start_app(&dir, &fake, &[("PW_EMAIL", EMAIL)]);
    assert!(
        wait_for(Duration::from_secs(15), || {
            request(&app, "GET", "/aggregates", &[], None)
                .body
                .contains("instant_power")
        }),
        "no cloud data"
    );
    let calls = fake.calls();
    assert!(
        calls.iter().any(|c| c
            .path
            .contains(&format!("/energy_sites/{}/live_status", SITE_ID + 1))),
        "{calls:?}"
    );
    assert!(calls.iter().all(|c| c.path.starts_with("/oauth2")
        || c.authorization.as_deref() == Some(&format!("Bearer {access}"))));
    app.stop();

    // pypowerwall 0.22.2 reads the same files.
    if let Some(py) = python() {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/read_cloud_files.py");
        let out = Command::new(py)
            .arg(script)
            .arg(&dir)
            .arg(EMAIL)
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json::parse(text.trim()).unwrap();
        let now_doc = json::parse(&std::fs::read_to_string(&auth_path).unwrap()).unwrap();
        let sso = now_doc.path(&[EMAIL, "sso"]).unwrap();
        assert_eq!(v.get("authorized").and_then(Value::as_bool), Some(true));
        assert_eq!(v.get("access_token"), sso.get("access_token"));
        assert_eq!(v.get("refresh_token"), sso.get("refresh_token"));
        assert_eq!(
            v.get("sso_url").and_then(Value::as_str),
            Some(fake.url().as_str())
        );
        assert_eq!(v.get("siteid").and_then(Value::as_i64), Some(SITE_ID + 1));
    }
}

#[test]
fn setup_errors_say_what_went_wrong() {
    let fake = FakeCloud::start("unused-access", "unused-refresh");
    let dir = temp_dir("setup-errors");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &fake.cert_pem).unwrap();
    let no_files =
        |d: &Path| !d.join(".pypowerwall.auth").exists() && !d.join(".pypowerwall.site").exists();

    // A final URL of another login: state mismatch, no token request.
    let out = command(
        &fake,
        &dir,
        &ca,
        &[
            "setup",
            "--redirect-url",
            "https://auth.tesla.com/void/callback?code=code-1&state=someone-else",
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("state mismatch"),
        "{err}"
    );
    // Pasted text that is not the URL.
    let run = setup(&fake, &dir, &ca, &["setup"], |_| "my password\n".into());
    assert!(
        !run.ok && run.stderr.contains("not the final URL"),
        "{}",
        run.stderr
    );
    // An expired or already used code (right state): Tesla refuses it, we say why.
    let run = setup(&fake, &dir, &ca, &["setup"], |u| {
        let state = u.split("state=").nth(1).unwrap().split('&').next().unwrap();
        format!("{VOID_CALLBACK}?code=code-expired&state={state}\n")
    });
    assert!(
        !run.ok && run.stderr.contains("refused the code"),
        "{}",
        run.stderr
    );
    assert!(no_files(&dir));
    assert!(
        fake.calls().iter().all(|c| !c.path.starts_with("/api/")),
        "nothing past the login"
    );

    // The fake checks PKCE: the right code with another verifier is refused.
    let u = format!(
        "{}oauth2/v3/authorize?client_id=ownerapi&code_challenge={}&code_challenge_method=S256&redirect_uri=https%3A%2F%2Fauth.tesla.com%2Fvoid%2Fcallback&response_type=code&scope=openid+email+offline_access&state=s",
        fake.url(),
        b64url(&[7u8; 32])
    );
    let code = form(login(&fake, &u).split_once('?').unwrap().1, "code");
    let mut h2 = H2::new(fake.cert_pem.as_bytes()).unwrap();
    let body = format!("grant_type=authorization_code&client_id=ownerapi&code={code}&code_verifier=wrong&redirect_uri=https%3A%2F%2Fauth.tesla.com%2Fvoid%2Fcallback");
    let token_url = format!("{}oauth2/v3/token", fake.url());
    let r = h2
        .send(
            &Request {
                method: "POST",
                url: &token_url,
                headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
                body: body.as_bytes(),
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(fake.state().pkce_failures, 1);

    // No energy site on the account.
    fake.state().no_sites = true;
    let run = setup(&fake, &dir, &ca, &["setup", "--email", EMAIL], |u| {
        format!("{u}\n")
    });
    assert!(
        !run.ok && run.stderr.contains("no energy site"),
        "{}",
        run.stderr
    );
    fake.state().no_sites = false;
    // --site names a site the account does not have.
    let run = setup(&fake, &dir, &ca, &["setup", "--site", "42"], |u| {
        format!("{u}\n")
    });
    assert!(
        !run.ok && run.stderr.contains("site 42 is not"),
        "{}",
        run.stderr
    );
    // --site picks without asking.
    let run = setup(
        &fake,
        &dir,
        &ca,
        &["setup", "--site", &SITE_ID.to_string()],
        |u| format!("{u}\n"),
    );
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join(".pypowerwall.site")).unwrap(),
        SITE_ID.to_string()
    );

    // An unwritable directory is refused before the login starts.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = command(&fake, &file.join("sub"), &ca, &["setup"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot write the token files"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("authorize"));
}

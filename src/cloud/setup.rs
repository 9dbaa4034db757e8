//! `pypowerwall-server setup` (and the Python server's `--setup`): sign in to Tesla's Owner API
//! without Python, the way pypowerwall's `setup` (its bundled teslapy) does it, and write the
//! token files in pypowerwall 0.22.2's format so that either tool can use the other's files.
//!
//! OAuth 2.0 authorization code with PKCE (RFC 7636, S256): client `ownerapi`, redirect
//! `https://auth.tesla.com/void/callback`, scopes `openid email offline_access`, SSO
//! `https://auth.tesla.com/` (`--cn`: `https://auth.tesla.cn/`; `PW_CLOUD_AUTH_URL` wins). We
//! print the authorize URL; the user logs in with a browser, lands on Tesla's "Page Not Found"
//! page and pastes its address (stdin, or `--redirect-url`). We check the `state`, exchange the
//! code (HTTP/2, form body, the code verifier), list the account's energy sites, pick one
//! (`--site`, else ask, else the only one) and write `.pypowerwall.auth`
//! (`{"<email>": {"url": <SSO>, "sso": {token_type, access_token, refresh_token, id_token,
//! expires_in, expires_at}}}`, other accounts kept) and `.pypowerwall.site` (the id as text)
//! into `PW_AUTH_PATH`, each atomically with mode 0600. FleetAPI is not set up here: an
//! existing `.pypowerwall.fleetapi` keeps working. Tokens are never printed.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::session::{self, form_encode, Session, Site};
use super::tokens;
use super::transport::{default_transport, Request, Transport};
use crate::config::{keys, CloudAuth};
use crate::json::{self, Map, Value};

pub const CLIENT_ID: &str = "ownerapi";
pub const REDIRECT_URI: &str = "https://auth.tesla.com/void/callback";
pub const SCOPES: &str = "openid email offline_access";
const AUTH_US: &str = "https://auth.tesla.com/";
const AUTH_CN: &str = "https://auth.tesla.cn/";
const OWNER_CN: &str = "https://owner-api.vn.cloud.tesla.cn/";
const TIMEOUT: Duration = Duration::from_secs(20);
/// Longest line read from stdin.
const MAX_LINE: usize = 8192;

/// What `setup` needs to know.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub cn: bool,
    pub redirect_url: Option<String>,
    pub site: Option<i64>,
    pub email: Option<String>,
    pub authpath: String,
    pub auth_url: Option<String>,
    pub owner_url: Option<String>,
    pub ca_file: Option<String>,
}

impl Options {
    /// The keys `setup` uses, read through the configuration-key table's environment names.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Options {
        let get = |k: &keys::Key| {
            k.env
                .iter()
                .find_map(|n| env(n))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Options {
            authpath: get(&keys::AUTH_PATH).unwrap_or_default(),
            email: get(&keys::EMAIL)
                .filter(|e| e.contains('@') && e != crate::config::EMAIL_PLACEHOLDER),
            site: get(&keys::SITEID).and_then(|s| s.parse().ok()),
            auth_url: get(&keys::CLOUD_AUTH_URL),
            owner_url: get(&keys::CLOUD_OWNER_URL),
            ca_file: get(&keys::CLOUD_CA),
            ..Options::default()
        }
    }

    fn sso(&self) -> String {
        let u = match (&self.auth_url, self.cn) {
            (Some(u), _) => u.as_str(),
            (None, true) => AUTH_CN,
            (None, false) => AUTH_US,
        };
        if u.ends_with('/') {
            u.to_string()
        } else {
            format!("{u}/")
        }
    }
}

/// The PKCE secret, its S256 challenge and the CSRF `state` of one login.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
    pub state: String,
}

impl Pkce {
    /// A fresh verifier (32 random bytes) and state (16), from the system's randomness.
    pub fn new() -> Result<Pkce, String> {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let mut v = [0u8; 32];
        let mut s = [0u8; 16];
        rng.fill(&mut v)
            .and_then(|_| rng.fill(&mut s))
            .map_err(|_| "the system's random number generator failed".to_string())?;
        let verifier = b64url(&v);
        Ok(Pkce {
            challenge: challenge_of(&verifier),
            verifier,
            state: b64url(&s),
        })
    }
}

/// `BASE64URL(SHA256(verifier))` without padding.
pub fn challenge_of(verifier: &str) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// URL-safe base64 without padding.
pub fn b64url(data: &[u8]) -> String {
    crate::wire::base64(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The address the user opens to log in.
pub fn authorize_url(sso: &str, p: &Pkce, email: Option<&str>) -> String {
    let mut q = vec![
        ("client_id", CLIENT_ID),
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", SCOPES),
        ("state", p.state.as_str()),
    ];
    if let Some(e) = email {
        q.push(("login_hint", e));
    }
    let query: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect();
    format!("{sso}oauth2/v3/authorize?{}", query.join("&"))
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| unescape(k) == key)
        .map(|(_, v)| unescape(v))
        .filter(|v| !v.is_empty())
}

/// The authorization code of the pasted final URL, after checking its `state`.
pub fn code_from_redirect(pasted: &str, state: &str) -> Result<String, String> {
    let pasted = pasted.trim();
    let query = pasted
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("");
    if let Some(e) = query_param(query, "error") {
        let why = query_param(query, "error_description").unwrap_or_default();
        return Err(format!(
            "Tesla refused the login ({e}{}{why}); run setup again",
            if why.is_empty() { "" } else { ": " }
        ));
    }
    let Some(code) = query_param(query, "code") else {
        return Err(
            "the pasted text is not the final URL: paste the whole address of the \
             'Page Not Found' page you land on after logging in (it contains '?code=')"
                .into(),
        );
    };
    match query_param(query, "state") {
        Some(s) if crate::secret::Secret::new(s.clone()).matches(state) => Ok(code),
        _ => Err(
            "state mismatch: the pasted URL does not belong to this login \
             (an older tab or another run?); run setup again and paste the URL of this login"
                .into(),
        ),
    }
}

/// Exchanges the code for tokens; the token answer.
fn exchange(t: &mut dyn Transport, sso: &str, code: &str, verifier: &str) -> Result<Map, String> {
    let body = format!(
        "grant_type=authorization_code&client_id={}&code={}&code_verifier={}&redirect_uri={}",
        CLIENT_ID,
        form_encode(code),
        form_encode(verifier),
        form_encode(REDIRECT_URI)
    );
    let url = format!("{sso}oauth2/v3/token");
    let req = Request {
        method: "POST",
        url: &url,
        headers: vec![
            ("accept", "application/json".into()),
            ("content-type", "application/x-www-form-urlencoded".into()),
        ],
        body: body.as_bytes(),
    };
    let resp = t
        .send(&req, TIMEOUT)
        .map_err(|e| format!("token exchange at {url}: {e}"))?;
    let doc = json::parse_bytes(&resp.body).unwrap_or(Value::Null);
    if resp.status != 200 {
        let err = doc.get("error").and_then(Value::as_str).unwrap_or("");
        let err: String = err.chars().filter(|c| !c.is_control()).take(80).collect();
        return Err(format!(
            "Tesla refused the code (HTTP {}{}{err}): a code works once and expires a few \
             minutes after the login; run setup again and paste the new URL promptly",
            resp.status,
            if err.is_empty() { "" } else { ": " }
        ));
    }
    let m = doc
        .as_object()
        .cloned()
        .ok_or_else(|| "the token answer is not a JSON object".to_string())?;
    for k in ["access_token", "refresh_token"] {
        if m.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(format!("the token answer holds no {k}"));
        }
    }
    Ok(m)
}

/// The `email` claim of an OpenID id_token (unverified: it only names the file's entry).
fn email_of_id_token(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let v = json::parse_bytes(&b64url_decode(payload)?).ok()?;
    v.get("email")
        .and_then(Value::as_str)
        .filter(|e| e.contains('@'))
        .map(str::to_string)
}

fn read_line(input: &mut dyn BufRead) -> Result<String, String> {
    let mut line = String::new();
    let mut limited = std::io::Read::take(&mut *input, MAX_LINE as u64);
    limited
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(line.trim().to_string())
}

/// Fails early, before the user logs in, when the token files cannot be written.
fn check_writable(dir: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| {
        format!(
            "cannot write the token files into {} (PW_AUTH_PATH): {e}",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".pypowerwall.setup-probe");
    tokens::atomic_write(&probe, b"").map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The whole set-up, talking to the user through `input` / `out`. Returns the token directory
/// and the chosen site.
pub fn run(
    opts: &Options,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(PathBuf, Site), String> {
    let dir = tokens::dir(&opts.authpath);
    check_writable(&dir)?;
    let sso = opts.sso();
    let auth = CloudAuth {
        authpath: opts.authpath.clone(),
        email: None,
        siteid: opts.site,
        fleet: false,
        owner_url: opts
            .owner_url
            .clone()
            .or_else(|| opts.cn.then(|| OWNER_CN.to_string())),
        auth_url: opts.auth_url.clone(),
        fleet_url: None,
        ca_file: opts.ca_file.clone(),
    };
    let mut transport = default_transport(&session::ca_pem(&auth).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let pkce = Pkce::new()?;
    let say = |out: &mut dyn Write, s: &str| -> Result<(), String> {
        out.write_all(s.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| format!("cannot write to the terminal: {e}"))
    };
    say(out, "Tesla account set-up (Owner API)\n\nOpen this address in a browser and log in to Tesla:\n\n")?;
    say(
        out,
        &format!("{}\n\n", authorize_url(&sso, &pkce, opts.email.as_deref())),
    )?;
    let pasted = match &opts.redirect_url {
        Some(u) => u.clone(),
        None => {
            say(out, "After the login the browser shows 'Page Not Found'. Paste that page's whole address here:\n")?;
            read_line(input)?
        }
    };
    let code = code_from_redirect(&pasted, &pkce.state)?;
    let token = exchange(transport.as_mut(), &sso, &code, &pkce.verifier)?;
    let email = match opts.email.clone().or_else(|| {
        token
            .get("id_token")
            .and_then(Value::as_str)
            .and_then(email_of_id_token)
    }) {
        Some(e) => e,
        None => {
            say(out, "Tesla account e-mail: ")?;
            let e = read_line(input)?;
            if !e.contains('@') {
                return Err(format!("'{e}' is not an e-mail address"));
            }
            e
        }
    };
    let expires_in = token
        .get("expires_in")
        .and_then(Value::as_i64)
        .unwrap_or(28_800);
    let now = crate::clock::unix_secs(std::time::SystemTime::now());
    let mut sso_doc = Map::new()
        .with(
            "token_type",
            token
                .get("token_type")
                .and_then(Value::as_str)
                .unwrap_or("Bearer"),
        )
        .with(
            "access_token",
            token.get("access_token").cloned().unwrap_or(Value::Null),
        )
        .with(
            "refresh_token",
            token.get("refresh_token").cloned().unwrap_or(Value::Null),
        );
    if let Some(id) = token.get("id_token").cloned() {
        sso_doc.insert("id_token", id);
    }
    sso_doc.insert("expires_in", expires_in);
    sso_doc.insert("expires_at", now + expires_in);
    drop(token);
    tokens::write_owner_login(&dir, &email, &sso, sso_doc).map_err(|e| e.to_string())?;
    say(
        out,
        &format!(
            "Signed in; tokens for {email} saved to {}\n",
            dir.join(tokens::AUTH_FILE).display()
        ),
    )?;

    let auth = CloudAuth {
        email: Some(email.clone()),
        ..auth
    };
    let mut s =
        Session::with_transport("setup", &auth, TIMEOUT, transport).map_err(|e| e.to_string())?;
    let sites = s
        .sites()
        .map_err(|e| format!("cannot list the energy sites: {e}"))?;
    if sites.is_empty() {
        return Err(format!(
            "the account {email} has no energy site (Powerwall); nothing to monitor"
        ));
    }
    let current = tokens::read_site(&dir);
    let site = if let Some(want) = opts.site {
        sites
            .iter()
            .find(|x| x.id == want)
            .cloned()
            .ok_or_else(|| {
                let ids: Vec<String> = sites.iter().map(|x| x.id.to_string()).collect();
                format!(
                    "site {want} is not an energy site of this account (sites: {})",
                    ids.join(", ")
                )
            })?
    } else if sites.len() == 1 {
        sites[0].clone()
    } else {
        let default = sites
            .iter()
            .position(|x| Some(x.id) == current)
            .unwrap_or(0);
        say(
            out,
            &format!("\n{} sites found (* = default)\n", sites.len()),
        )?;
        for (i, x) in sites.iter().enumerate() {
            let mark = if i == default { '*' } else { ' ' };
            say(
                out,
                &format!(
                    " {mark}{} - {} ({})\n",
                    i + 1,
                    x.name.as_deref().unwrap_or("Unknown"),
                    x.id
                ),
            )?;
        }
        say(out, &format!("\nSelect a site [{}]: ", default + 1))?;
        let answer = read_line(input)?;
        if answer.is_empty() {
            sites[default].clone()
        } else {
            match answer.parse::<usize>() {
                Ok(n) if (1..=sites.len()).contains(&n) => sites[n - 1].clone(),
                _ => {
                    return Err(format!(
                        "'{answer}' is not a site number from 1 to {}",
                        sites.len()
                    ))
                }
            }
        }
    };
    tokens::write_site(&dir, site.id).map_err(|e| e.to_string())?;
    say(
        out,
        &format!(
            "Selected site {} ({}); saved to {}\n\nStart the server with PW_AUTH_PATH={} (and no PW_HOST for cloud mode).\n",
            site.id,
            site.name.as_deref().unwrap_or("Unknown"),
            dir.join(tokens::SITE_FILE).display(),
            dir.display()
        ),
    )?;
    Ok((dir, site))
}

/// `pypowerwall-server setup [--cn] [--redirect-url URL] [--site ID] [--email EMAIL]`.
pub fn run_cli(mut args: pico_args::Arguments) -> Result<(), String> {
    let mut opts = Options::from_env(&|k| std::env::var(k).ok());
    let e = |e: pico_args::Error| {
        format!("{e} (try: setup [--cn] [--redirect-url URL] [--site ID] [--email EMAIL])")
    };
    opts.cn = args.contains("--cn");
    if let Some(u) = args
        .opt_value_from_str::<_, String>("--redirect-url")
        .map_err(e)?
    {
        opts.redirect_url = Some(u);
    }
    if let Some(s) = args.opt_value_from_str::<_, i64>("--site").map_err(e)? {
        opts.site = Some(s);
    }
    if let Some(m) = args.opt_value_from_str::<_, String>("--email").map_err(e)? {
        opts.email = Some(m);
    }
    let rest = args.finish();
    if let Some(r) = rest.first() {
        return Err(format!("unexpected argument {r:?}"));
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    run(&opts, &mut input, &mut out).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_like_rfc_7636() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let p = Pkce::new().unwrap();
        assert_eq!(p.verifier.len(), 43);
        assert_eq!(p.challenge, challenge_of(&p.verifier));
        assert_ne!(p.state, Pkce::new().unwrap().state);
        assert_eq!(
            b64url_decode(&b64url(b"any bytes?>")).unwrap(),
            b"any bytes?>"
        );
    }

    #[test]
    fn redirect_checks() {
        let ok = "https://auth.tesla.com/void/callback?code=abc%2B1&state=st&issuer=x";
        assert_eq!(code_from_redirect(ok, "st"), Ok("abc+1".into()));
        assert_eq!(
            code_from_redirect(&format!("  {ok}\n"), "st"),
            Ok("abc+1".into())
        );
        assert!(code_from_redirect(ok, "other")
            .unwrap_err()
            .contains("state mismatch"));
        assert!(
            code_from_redirect("https://auth.tesla.com/void/callback?state=st", "st")
                .unwrap_err()
                .contains("not the final URL")
        );
        assert!(code_from_redirect("hello", "st")
            .unwrap_err()
            .contains("not the final URL"));
        assert!(code_from_redirect(
            "https://auth.tesla.com/void/callback?error=login_required&error_description=x&state=st",
            "st"
        )
        .unwrap_err()
        .contains("refused the login"));
        assert!(code_from_redirect("?code=a&state=%", "st").is_err());
    }

    #[test]
    fn authorize_url_has_every_parameter() {
        let p = Pkce::new().unwrap();
        let u = authorize_url(AUTH_US, &p, Some("a@b.c"));
        assert!(u.starts_with("https://auth.tesla.com/oauth2/v3/authorize?client_id=ownerapi&"));
        assert!(u.contains("redirect_uri=https%3A%2F%2Fauth.tesla.com%2Fvoid%2Fcallback"));
        assert!(u.contains("code_challenge_method=S256"));
        assert!(u.contains("scope=openid+email+offline_access"));
        assert!(u.contains(&format!("state={}", p.state)));
        assert!(u.contains("login_hint=a%40b.c"));
    }

    #[test]
    fn email_from_id_token() {
        let t = format!("x.{}.sig", b64url(br#"{"email": "me@example.com"}"#));
        assert_eq!(email_of_id_token(&t), Some("me@example.com".into()));
        assert_eq!(email_of_id_token("junk"), None);
    }
}

//! The built-in gateway simulator: a Tesla Powerwall gateway on a TLS socket.
//!
//! Why it exists: testing a gateway client needs a gateway, and real ones are expensive, slow to
//! reach (Wi-Fi access point) and cannot be made to fail on purpose. This simulator speaks the
//! gateway's wire protocol well enough that the Python pypowerwall 0.22.2 client cannot tell it
//! from a gateway, so the legacy proxy and this server can be run side by side against the same
//! instance. It serves:
//!
//! * **TEDAPI** (spec `gateway-protocols.md` §1): `GET /`, `GET /tedapi/din`, `POST /tedapi/v1`
//!   and `POST /tedapi/device/<din>/v1`, protobuf in and out, optional Basic auth and gzip; the
//!   V2024_06 and V2026_06 query sets from one state; with [`SimOptions::v1r_public_key`] also the
//!   PW3 LAN's v1r (`POST /tedapi/v1r`, signatures verified, §3).
//! * **The local REST API** (§4) for PW2-style fixtures: `/api/login/Basic`, `/api/*` JSON and
//!   the `/api/devices/vitals` protobuf, with the upstream simulator's auth rule.
//! * **A test surface** under `/test/` (no auth): the upstream simulator's knobs and scenarios,
//!   fault injection (`/test/fault/<kind>[/<n>]` for TEDAPI, `/test/local-fault/<kind>[/<n>]`
//!   for the local `/api/*` GETs), `/test/vitals/<on|off>` (firmware without the vitals
//!   endpoint), a clock jump (`/test/advance/<seconds>`),
//!   request counters (`/test/stats`) and `/test/reset`. [`SimHandle`] offers the same in
//!   process.
//!
//! Fixtures ([`Fixture`]): `pw2` is the upstream Python simulator's data, `pw3` the composed PW3
//! site the PW3 goldens were captured against, `demo` (default) a realistic PW2 home without the
//! upstream data's quirks. With [`SimOptions::frozen`] nothing moves on its own and an untouched
//! fixture is served byte for byte (golden tests depend on this); otherwise solar, load, battery
//! and grid follow the time of day. Both the TEDAPI and the local views are rendered from one
//! `model` state, so the knobs move both.
//!
//! Layout: `data` embeds and describes the fixtures, `model` is the physical state,
//! `render` turns state into gateway documents, `tedapi` and `local` answer the two APIs,
//! `http` is a small HTTP/1.1 layer and `server` runs the sockets, faults and counters.

mod data;
mod faults;
mod http;
mod knobs;
mod local;
mod model;
mod render;
mod server;
mod tedapi;
#[cfg(feature = "v1r")]
mod v1r;
mod v2026;

/// Whether an `Authorization` header carries the current v1r Bearer token.
#[cfg(feature = "v1r")]
fn v1r_bearer_ok(header: Option<&str>, generation: u64) -> bool {
    v1r::bearer_ok(header, generation)
}

#[cfg(not(feature = "v1r"))]
fn v1r_bearer_ok(_header: Option<&str>, _generation: u64) -> bool {
    false
}

use std::net::SocketAddr;

pub use faults::Fault;
pub use knobs::Stats;
pub use model::{past, PastSample};
pub use server::{SimHandle, MAX_CONNECTIONS};

/// Which gateway the simulator pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fixture {
    /// The upstream Python simulator's PW2 + PW+ site, quirks included (grid status unknown,
    /// firmware version `""`, no temperatures).
    Pw2,
    /// The composed PW3 leader + follower site of the PW3 goldens (`GET /` answers 403).
    Pw3,
    /// A realistic PW2 home based on the pw2 data, without its quirks.
    #[default]
    Demo,
}

impl Fixture {
    pub fn parse(s: &str) -> Option<Fixture> {
        match s.to_ascii_lowercase().as_str() {
            "pw2" => Some(Fixture::Pw2),
            "pw3" => Some(Fixture::Pw3),
            "demo" => Some(Fixture::Demo),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fixture::Pw2 => "pw2",
            Fixture::Pw3 => "pw3",
            Fixture::Demo => "demo",
        }
    }
}

/// How to run a simulator.
#[derive(Clone, PartialEq)]
pub struct SimOptions {
    /// Where to listen; port 0 picks a free port (see [`SimHandle::addr`]).
    pub listen: SocketAddr,
    pub fixture: Fixture,
    /// When set, `/tedapi/*` needs Basic auth `Tesla_Energy_Device:<gw_pwd>` and the local login
    /// accepts only the customer password (its last 5 characters). When unset nothing is checked
    /// on `/tedapi/*` and any login succeeds, as in the upstream simulator.
    pub gw_pwd: Option<String>,
    /// The customer password the local login accepts. `None`: the last 5 characters of
    /// `gw_pwd` when that is set (Tesla's default), else any login (upstream).
    pub password: Option<String>,
    /// Nothing changes on its own; the `/test/` knobs still work.
    pub frozen: bool,
    /// Gzip the bodies of `/tedapi/*` answers without saying so (as firmware 25.42.2+ may).
    pub gzip: bool,
    /// TLS certificate chain and key (PEM); `None` uses the embedded test certificate.
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    /// v1r (PW3 wired LAN): the registered RSA public key, DER PKCS#1 (as pypowerwall's
    /// `tedapi_rsa_public.der`). When set, `POST /tedapi/v1r` verifies signed messages against
    /// it, `/tedapi/din` also accepts the Bearer token of the JSON login, and (pw3) the LAN
    /// login answers. `None`: no v1r.
    pub v1r_public_key: Option<Vec<u8>>,
    /// Connections served at once (`--max-connections`); more are dropped. Default 64, as a
    /// real gateway refuses a crowd; raise it to feed many gateways from one simulator.
    pub max_connections: usize,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fixture: Fixture::Demo,
            gw_pwd: None,
            password: None,
            frozen: false,
            gzip: false,
            cert_pem: None,
            key_pem: None,
            v1r_public_key: None,
            max_connections: server::MAX_CONNECTIONS,
        }
    }
}

/// Hides the gateway password and the private key.
impl std::fmt::Debug for SimOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |o: bool| if o { Some("***") } else { None };
        f.debug_struct("SimOptions")
            .field("listen", &self.listen)
            .field("fixture", &self.fixture)
            .field("gw_pwd", &secret(self.gw_pwd.is_some()))
            .field("password", &secret(self.password.is_some()))
            .field("frozen", &self.frozen)
            .field("gzip", &self.gzip)
            .field("cert_pem", &self.cert_pem.as_ref().map(Vec::len))
            .field("key_pem", &secret(self.key_pem.is_some()))
            .field(
                "v1r_public_key",
                &self.v1r_public_key.as_ref().map(Vec::len),
            )
            .finish()
    }
}

impl SimOptions {
    /// A simulator of `fixture` on a free port of 127.0.0.1.
    pub fn new(fixture: Fixture) -> SimOptions {
        SimOptions {
            fixture,
            ..SimOptions::default()
        }
    }
}

/// Binds the socket, starts the server threads and returns at once.
pub fn start(opts: SimOptions) -> Result<SimHandle, String> {
    server::start(opts)
}

/// Usage text of `pypowerwall-server sim`.
pub const USAGE: &str = "\
usage: pypowerwall-server sim [--listen ADDR:PORT] [--fixture pw2|pw3|demo] [--gw-pwd PASSWORD]
                              [--password PASSWORD] [--frozen] [--gzip] [--cert FILE --key FILE]
                              [--v1r-public-key FILE]

  --listen ADDR:PORT   where to listen (default 127.0.0.1:8443)
  --fixture NAME       pw2 (upstream simulator data), pw3 (PW3 leader + follower) or demo (default)
  --gw-pwd PASSWORD    require Basic auth on /tedapi/* and this password's last 5 characters at login
  --password PASSWORD  the customer password the local login accepts (instead of the last 5)
  --frozen             nothing moves on its own (golden tests); /test/ knobs still work
  --gzip               gzip /tedapi/* bodies without Content-Encoding, as newer firmware does
  --cert FILE --key FILE  PEM certificate and key (default: the embedded test certificate)
  --v1r-public-key FILE   accept RSA-signed /tedapi/v1r messages from this registered key (DER
                          PKCS#1, pypowerwall's tedapi_rsa_public.der); test knobs /test/v1r/...
  --max-connections N  connections served at once (default 64, like a gateway; more for load tests)
";

/// Parses the arguments of `pypowerwall-server sim` (after the subcommand).
pub fn parse_args(mut args: pico_args::Arguments) -> Result<SimOptions, String> {
    let mut opts = SimOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
        ..SimOptions::default()
    };
    if let Some(listen) = opt_str(&mut args, "--listen")? {
        opts.listen = listen
            .parse()
            .map_err(|_| format!("--listen: '{listen}' is not ADDR:PORT"))?;
    }
    if let Some(f) = opt_str(&mut args, "--fixture")? {
        opts.fixture = Fixture::parse(&f)
            .ok_or_else(|| format!("--fixture: '{f}' is not pw2, pw3 or demo"))?;
    }
    opts.gw_pwd = opt_str(&mut args, "--gw-pwd")?;
    opts.password = opt_str(&mut args, "--password")?;
    opts.frozen = args.contains("--frozen");
    opts.gzip = args.contains("--gzip");
    let cert = opt_str(&mut args, "--cert")?;
    let key = opt_str(&mut args, "--key")?;
    match (cert, key) {
        (Some(c), Some(k)) => {
            opts.cert_pem = Some(std::fs::read(&c).map_err(|e| format!("--cert {c}: {e}"))?);
            opts.key_pem = Some(std::fs::read(&k).map_err(|e| format!("--key {k}: {e}"))?);
        }
        (None, None) => {}
        _ => return Err("--cert and --key go together".into()),
    }
    if let Some(n) = opt_str(&mut args, "--max-connections")? {
        opts.max_connections = n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| format!("--max-connections: '{n}' is not a number from 1 to 100000"))?;
    }
    if let Some(path) = opt_str(&mut args, "--v1r-public-key")? {
        opts.v1r_public_key =
            Some(std::fs::read(&path).map_err(|e| format!("--v1r-public-key {path}: {e}"))?);
    }
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(format!(
            "unexpected argument(s): {}\n{USAGE}",
            rest.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(opts)
}

fn opt_str(args: &mut pico_args::Arguments, name: &'static str) -> Result<Option<String>, String> {
    args.opt_value_from_str(name)
        .map_err(|e| format!("{name}: {e}"))
}

/// `pypowerwall-server sim …`: parses the arguments, runs the simulator until the process ends.
pub fn run_cli(mut args: pico_args::Arguments) -> Result<(), String> {
    if args.contains(["-h", "--help"]) {
        print!("{USAGE}");
        return Ok(());
    }
    let bare = args.clone().finish().is_empty();
    let opts = parse_args(args)?;
    let (fixture, frozen) = (opts.fixture, opts.frozen);
    let handle = start(opts)?;
    log::info!(
        "gateway simulator ({}{}) listening on https://{} (knobs: /test/)",
        fixture.name(),
        if frozen { ", frozen" } else { "" },
        handle.addr()
    );
    if bare {
        log::info!(
            "no options given: a moving demo site on the default address, no password \
             (pypowerwall-server sim --help lists the options)"
        );
    }
    loop {
        std::thread::park();
    }
}

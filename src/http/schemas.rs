//! What `/openapi.json` says about each route: its response schema, parameters and error
//! answers, one [`Doc`] per body kind, referenced from the rows of `routes::ROUTES`.
//!
//! Schemas are written in the compact notation of [`super::notation`]. The legacy shapes follow
//! the reference proxy's answers for the simulator's fixtures (`shared/golden/`: TEDAPI, local,
//! PW3 and outage); their numbers are `num` because a gateway may send any JSON number. Shapes
//! of our own routes follow what their handlers build (`api`, `peer`, `status`, `timeseries`,
//! `control`). Bodies a gateway cannot serve are `null` (the proxy's failure bodies).

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
}

/// One path or query parameter.
pub struct Param {
    pub name: &'static str,
    pub at: In,
    /// Notation of the value's schema.
    pub schema: &'static str,
    pub about: &'static str,
}

/// The documentation of one route (or one kind of body).
pub struct Doc {
    /// Notation of the 200 answer's JSON body; for another media type, what the text is.
    pub ok: &'static str,
    /// Other answers: status, description, notation of the JSON body.
    pub errors: &'static [(u16, &'static str, &'static str)],
    /// Parameters; a `{name}` path segment without an entry here is a plain string.
    pub params: &'static [Param],
    /// Paths shown for a prefix route (empty: the pattern itself).
    pub paths: &'static [&'static str],
    /// Another media type a 200 answer may have, and what it is then.
    pub also: Option<(&'static str, &'static str)>,
}

const fn doc(ok: &'static str) -> Doc {
    Doc {
        ok,
        errors: &[],
        params: &[],
        paths: &[],
        also: None,
    }
}

const fn q(name: &'static str, schema: &'static str, about: &'static str) -> Param {
    Param {
        name,
        at: In::Query,
        schema,
        about,
    }
}

const fn p(name: &'static str, schema: &'static str, about: &'static str) -> Param {
    Param {
        name,
        at: In::Path,
        schema,
        about,
    }
}

/// The component schemas (`#/components/schemas/<name>`).
pub static COMPONENTS: &[(&str, &str)] = &[
    ("Error", "{error: str}"),
    ("UnknownId", "{error: str, gateways: [str]}"),
    (
        "ValidationError",
        "{detail: [{loc: [str], msg: str, type: str}]}",
    ),
    (
        "Meter",
        "{last_communication_time: str, instant_power: num, instant_reactive_power: num,
          instant_apparent_power: num, frequency: num, energy_exported: num, energy_imported: num,
          instant_average_voltage: num|null, instant_average_current: num|null, i_a_current: num,
          i_b_current: num, i_c_current: num, last_phase_voltage_communication_time: str,
          last_phase_power_communication_time: str, last_phase_energy_communication_time?: str,
          timeout: num, num_meters_aggregated?: num, instant_total_current: num|null,
          disclaimer?: str}",
    ),
    (
        "Aggregates",
        "{site: @Meter, battery: @Meter, load: @Meter, solar: @Meter}|null",
    ),
    ("Soe", "{percentage: num}|null"),
    ("Version", "{version: str, vint: int|null}"),
    (
        "String",
        "{Connected: bool, Current: num, Power: num, State: str, Voltage: num}",
    ),
    ("Strings", "{*: @String}"),
    ("Vitals", "{*: {*: any}}|null"),
    ("Temps", "{*: num|null}"),
    ("Fans", "{*: {*: num|null}}"),
    ("Flat", "{*: str|num|bool|null}"),
    ("Alerts", "[str]"),
    (
        "Status",
        "{din: str, start_time: str|null, up_time_seconds: str|null, is_new: bool, version: str,
          git_hash: str|null, commission_count: num, device_type: str|null, teg_type: str,
          sync_type: str, cellular_disabled: bool, can_reboot: bool,
          battery_commission_date?: str|null}|null",
    ),
    (
        "BatteryBlock",
        "{Type: str, PackagePartNumber: str, PackageSerialNumber?: str, disabled_reasons: array,
          pinv_state: num|str|null, pinv_grid_state: num|str|null, nominal_energy_remaining: num,
          nominal_full_pack_energy: num, p_out: num|null, q_out: num|null, v_out: num|null,
          f_out: num|null, i_out: num|null, energy_charged: num|null,
          energy_discharged: num|null, off_grid: bool|num|null, vf_mode: bool|num|null,
          wobble_detected: bool|null, charge_power_clamped: bool|null, backup_ready: bool|null,
          OpSeqState: str|null, version: str|null}",
    ),
    (
        "SystemStatus",
        "{battery_blocks?: [@BatteryBlock], nominal_full_pack_energy?: num,
          nominal_energy_remaining?: num, *: any}|null",
    ),
    (
        "Summary",
        "{type: 'summary', id: str, ts: num, site: num|null, solar: num|null, battery: num|null,
          load: num|null, soe: num|null, soe_app: num|null, grid_status: str|null,
          reserve: num|null, time_remaining_hours: num|null, full_pack_energy: num|null,
          energy_remaining: num|null, state: str, simulated: bool}",
    ),
    (
        "Gateway",
        "{id: str, name: str, host: str, mode: str,
          state: 'connecting'|'online'|'stale'|'offline'|'cooldown', firmware: str|null,
          site_name: str|null, pw3: bool, battery_count: int|null, simulated: bool, default: bool,
          last_success: num|null, age_seconds: num|null}",
    ),
    (
        "GatewayHealth",
        "{id: str, name: str, state: str, last_success: num|null, last_attempt: num|null,
          consecutive_failures: int, next_retry: num|null, last_error: str|null}",
    ),
    (
        "History",
        "{id: str, interval_seconds: int,
          points: [{ts: int, site: num, solar: num, battery: num, load: num, soe: num|null}]}",
    ),
    (
        "Day",
        "{gateway_id: str, day: str, solar_kwh: num, home_kwh: num, battery_charge_kwh: num,
          battery_discharge_kwh: num, grid_import_kwh: num, grid_export_kwh: num,
          last_sample_ts: num|null, updated_at: num, source: {*: str}, integral_kwh: {*: num},
          self_powered_pct: num|null, counter_reset: bool, gap: bool}",
    ),
];

/// A row without documentation (a unit test refuses it).
pub const UNDOCUMENTED: Doc = doc("");

// ---- legacy proxy shapes ----

pub const AGGREGATES: Doc = doc("@Aggregates");
pub const SOE: Doc = doc("@Soe");
pub const GRID_STATUS: Doc = doc("{grid_status: str, grid_services_active: bool|null}|null");
pub const CSV: Doc = Doc {
    params: &[q(
        "headers",
        "str",
        "Present (any value): a header line first",
    )],
    paths: &["/csv", "/csv/v2"],
    ..doc("CSV: `Grid,Home,Solar,Battery,BatteryLevel` (`/csv/v2` adds `GridStatus,Reserve`), one line of numbers")
};
pub const VITALS: Doc = doc("@Vitals");
pub const STRINGS: Doc = doc("@Strings");
pub const STATS: Doc = doc(
    "{pypowerwall: str, mode: str, gets: int, posts: int, errors: int, timeout: int,
      uri: {*: int}, ts: int, start: int, clear: int, uptime: str, mem: int, site_name: str|null,
      cloudmode: bool, fleetapi: bool, tedapi: bool, pw3: bool, tedapi_mode: str,
      tedapi_api_version: str, siteid: str|null, counter: int, cf: str,
      config: {*: str|num|bool|null}, connection_health: {*: any}, fallback_mode: {*: any},
      mem_cache: {*: any}, simulated?: bool, rss_kib?: int, gateways?: [@GatewayHealth]}",
);
pub const HEALTH: Doc = Doc {
    errors: &[(
        503,
        "No gateway has fresh data (`PW_HEALTH_503`), same body",
        "{pypowerwall: str, mode: str, *: any}",
    )],
    ..doc(
        "{pypowerwall: str, mode: str, tedapi_mode: str, pypowerwall_cache_expire: num,
          degradation_cache_ttl_seconds: num, graceful_degradation: bool, fail_fast_mode: bool,
          health_check_enabled: bool, startup_time: str, current_time: str,
          transports: {*: {active: bool, status: str, host?: str, *: any}},
          proxy_stats: {total_gets: int, total_posts: int, total_errors: int,
            total_timeouts: int},
          connection_health: {*: any}, fallback_mode: {*: any}, cached_data: {*: any},
          status?: str, gateways?: [@GatewayHealth], endpoint_statistics?: {*: {*: num}}}",
    )
};
pub const HEALTH_RESET: Doc = doc(
    "{status: str, health_counters_reset: bool, cache_cleared: bool, cache_entries_removed: int,
      endpoint_stats_cleared: int}",
);
pub const TEMPS: Doc = doc("@Temps");
pub const TEMPS_PW: Doc = doc("{*: num|null}");
pub const ALERTS: Doc = doc("@Alerts");
pub const ALERTS_PW: Doc = doc("{*: int}");
pub const FREQ: Doc = doc("@Flat");
pub const POD: Doc = doc("@Flat");
pub const JSON: Doc = doc(
    "{grid: num, home: num, solar: num, battery: num, soe: num, grid_status: int,
      reserve: num, time_remaining_hours: num, full_pack_energy: num, energy_remaining: num,
      strings: @Strings}",
);
pub const VERSION: Doc = doc("@Version");
pub const HELP: Doc = doc("HTML: the statistics page");
pub const PROBLEMS: Doc = doc("{problems: array}");
pub const TEDAPI: Doc = Doc {
    params: &[p(
        "document",
        "'config'|'status'|'components'|'battery'|'controller'",
        "The TEDAPI document",
    )],
    paths: &["/tedapi", "/tedapi/{document}"],
    ..doc("{error: str}
         |{vin?: str, auto_meter_update?: bool, battery_blocks?: array, site_info?: object,
           meters?: array, solars?: array, default_real_mode?: str, *: any}
         |{control?: object, system?: object, neurio?: object, esCan?: object, pw3Can?: object,
           components?: object, ieee20305?: object, teslaRemoteMeter?: object, *: any}
         |[{vin: str, type: str, disabled_reasons: array, nominal_energy_remaining?: num,
            nominal_full_pack_energy?: num, backup_ready?: bool, *: any}]
         |null")
};
pub const CLOUD: Doc = Doc {
    paths: &["/cloud"],
    ..doc("@Error")
};
pub const FLEETAPI: Doc = Doc {
    paths: &["/fleetapi"],
    ..doc("@Error")
};
pub const FANS: Doc = doc("@Fans");
pub const FANS_PW: Doc = Doc {
    paths: &["/fans/pw"],
    ..doc("{*: num|null}")
};
pub const CONTROL_GET: Doc = Doc {
    params: &[p(
        "action",
        "'reserve'|'mode'|'grid_charging'|'grid_export'|'max_backup'",
        "The setting (the proxy matches by prefix; other names answer `Not Found` as text)",
    )],
    paths: &["/control/{action}"],
    also: Some(("text/plain", "`Not Found` for another name (in local modes: the gateway's own answer)")),
    ..doc("{reserve: num|null}|{mode: str|null}|{grid_charging: bool|null}|{grid_export: str|null}|{max_backup: any}|@Error")
};
pub const PW: Doc = Doc {
    params: &[p(
        "name",
        "'level'|'power'|'site'|'solar'|'battery'|'battery_blocks'|'load'|'grid'|'home'
         |'vitals'|'temps'|'strings'|'din'|'uptime'|'version'|'status'|'system_status'
         |'grid_status'|'aggregates'|'site_name'|'alerts'|'is_connected'|'get_reserve'
         |'get_mode'|'get_time_remaining'",
        "The library call (another name answers `{\"error\": \"Invalid Request\"}`)",
    )],
    ..doc(
        "@Meter|@Aggregates|@Vitals|@Temps|@Strings|@Status|@SystemStatus
         |{*: @BatteryBlock}|{alerts: [str]|null}
         |{site: num, solar: num, battery: num, load: num}
         |{level: num|null}|{din: str|null}|{uptime: str|null}|{version: str|null}
         |{site_name: str|null}|{is_connected: bool}|{reserve: num|null}|{mode: str|null}
         |{time_remaining: num|null}|{grid_status?: str, grid_services_active?: bool|null}
         |@Error|null",
    )
};

// ---- the gateway's /api/* documents the proxy passes through (null: no data) ----

pub const API_STATUS: Doc = doc("@Status");
pub const API_SITE_NAME: Doc = doc("{site_name: str, timezone: str}|null");
pub const API_METERS_SITE: Doc = doc(
    "[{id: num, location: str, type: str, cts: [bool], inverted: [bool], connection: object,
       Cached_readings: @Meter, *: any}]|null",
);
pub const API_METERS_SOLAR: Doc = doc("[object]|null");
pub const API_SITEMASTER: Doc = doc(
    "{status: str, running: bool, connected_to_tesla: bool, power_supply_mode: bool,
      can_reboot: str}|null",
);
pub const API_POWERWALLS: Doc = doc(
    "{powerwalls: [object], enumerating?: bool, updating?: bool, checking_if_offgrid?: bool,
      running_phase_detection?: bool, phase_detection_last_error?: str, bubble_shedding?: bool,
      on_grid_check_error?: str, grid_qualifying?: bool, grid_code_validating?: bool,
      phase_detection_not_available?: bool, gateway_din?: str, sync?: object,
      msa?: object|null, states?: array|null}|null",
);
pub const API_REGISTRATION: Doc = doc("{status: str}");
pub const API_SYSTEM_STATUS: Doc = doc("@SystemStatus");
pub const API_UPDATE_STATUS: Doc = doc(
    "{state: str, info: object, current_time: num, last_status_time: num, version: str,
      offline_updating: bool, offline_update_error: str, estimated_bytes_per_second: num|null}
     |null",
);
pub const API_SITE_INFO: Doc = doc(
    "{site_name: str, timezone: str, max_system_energy_kWh: num|null,
      max_system_power_kW: num|null, max_site_meter_power_kW: num|null,
      min_site_meter_power_kW: num|null, nominal_system_energy_kWh: num|null,
      nominal_system_power_kW: num|null, panel_max_current: num|null, grid_code: object|str}
     |null",
);
pub const API_GRID_FAULTS: Doc = doc("array|null");
pub const API_OPERATION: Doc = doc("{real_mode: str, backup_reserve_percent: num|null}|null");
pub const API_TEXT_OR_NULL: Doc = doc("str|array|object|null");
pub const API_SOLARS: Doc = doc("[{brand: str, model: str, power_rating_watts: num}]|null");
pub const API_BRANDS: Doc = doc("[str]|null");
pub const API_CUSTOMER: Doc = doc("{registered: bool}|null");
pub const API_METERS: Doc = doc("[{serial: str, short_id: str, type: str, *: any}]|null");
pub const API_INSTALLER: Doc = doc(
    "{company: str, customer_id: str, phone: str, email: str, location: str, mounting: str,
      wiring: str, backup_configuration: str, solar_installation: str,
      solar_installation_type: str, run_sitemaster: bool, verified_config: bool,
      installation_types: [str]}|null",
);
pub const API_NETWORKS: Doc = doc(
    "str|[{network_name: str, interface: str, enabled: bool, active: bool, primary: bool,
          *: any}]|null",
);
pub const API_SYSTEM_NETWORKS: Doc = doc("object|null");
pub const API_CT_REFS: Doc = doc("{ct1: str, ct2: str, ct3: str}|null");
pub const API_AUTH_TOGGLE: Doc = doc("{toggle_auth_supported: bool}|null");
pub const API_SOLAR_POWERWALL: Doc = doc(
    "{pvac_status?: object, pvs_status?: object, pv_power_limit?: num,
      power_status_setpoint?: str, pvac_alerts?: object, pvs_alerts?: object}|null",
);

// ---- our routes ----

const ID: Param = p("id", "str", "A gateway id (`GET /api/gateways`)");
const UNKNOWN_ID: (u16, &str, &str) = (404, "Unknown gateway id", "@UnknownId");

pub const CONTROL_STATUS: Doc = doc(
    "{enabled: bool, default_gateway: str, islanding_cooldown: int,
      gateways: [{id: str, cloud: bool, lan: bool, lan_error: str|null, actions: [str],
                  path: str|null, *: any}]}",
);
pub const GATEWAYS: Doc = doc("[@Gateway]");
pub const GATEWAY: Doc = Doc {
    params: &[ID],
    errors: &[UNKNOWN_ID],
    ..doc(
        "{id: str, name: str, host: str, mode: str, state: str, firmware: str|null,
          site_name: str|null, pw3: bool, battery_count: int|null, simulated: bool,
          default: bool, last_success: num|null, age_seconds: num|null,
          health: {last_success: num|null, last_attempt: num|null, consecutive_failures: int,
                   next_retry: num|null, last_error: str|null},
          summary: @Summary}",
    )
};
pub const GATEWAY_CONTROL: Doc = Doc {
    params: &[
        ID,
        p(
            "action",
            "'reserve'|'mode'|'grid_charging'|'grid_export'",
            "The setting",
        ),
    ],
    errors: &[(404, "Unknown gateway or setting", "@Error")],
    ..doc("{reserve: num|null}|{mode: str}|{grid_charging: bool}|{grid_export: str}")
};
pub const GATEWAY_HISTORY: Doc = Doc {
    params: &[ID],
    errors: &[UNKNOWN_ID],
    ..doc("@History")
};
pub const GATEWAY_VIEW: Doc = Doc {
    params: &[
        ID,
        p(
            "view",
            "'vitals'|'aggregates'|'soe'|'strings'|'temps'|'alerts'|'fans'|'freq'|'pod'
             |'battery'|'status'|'version'",
            "The legacy shape (`battery`: /pw/battery_blocks, `status`: /api/status)",
        ),
    ],
    errors: &[(404, "Unknown gateway id or view", "@UnknownId")],
    ..doc(
        "@Vitals|@Aggregates|@Soe|@Strings|@Temps|@Alerts|@Fans|@Flat|{*: @BatteryBlock}
         |@Status|@Version|null",
    )
};
pub const AGG_POWER: Doc = doc(
    "{site: num|null, solar: num|null, battery: num|null, load: num|null, contributors: [str],
      stale: [str], offline: [str], ts: num, grid: num|null, timestamp: num}",
);
pub const AGG_SOE: Doc = doc(
    "{percentage: num|null, percentage_raw: num|null, remaining_wh: num|null, full_wh: num|null,
      contributors: [str], raw_percentage: num|null, num_gateways: int, timestamp: num}",
);
pub const AGG_STATUS: Doc = doc("{status: str, online: int, stale: int, offline: int,
      gateways: [{id: str, name: str, state: str, age_seconds: num|null, last_error: str|null}]}");
pub const AGG_HISTORY: Doc = doc("@History");
pub const PEER_ROOT: Doc = doc(
    "{total_battery_percent_raw: num|null, total_battery_percent: num|null,
      total_battery_capacity: num|null, total_site_power: num|null,
      total_battery_power: num|null, total_load_power: num|null, total_solar_power: num|null,
      total_grid_power: num|null, grid_status: str|null, num_gateways: int, num_online: int,
      num_degraded: int,
      gateways: {*: {gateway: object, data: object|null, online: bool, last_updated: num|null,
                     error: str|null}},
      timestamp: num}",
);
pub const PEER_BATTERY: Doc = doc(
    "{total_capacity: num|null, battery_percent: num|null, battery_percent_raw: num|null,
      battery_power: num|null, num_gateways: int, num_online: int, timestamp: num}",
);
pub const PEER_STRINGS: Doc = doc("{*: @Strings}");
pub const PEER_ALERTS: Doc = doc("{*: @Alerts}");
pub const PEER_VITALS: Doc = doc("{*: @Vitals}");

const GATEWAY_Q: Param = q("gateway", "str", "One gateway's id (unknown: 404)");
const FORMAT_Q: Param = q("format", "'json'|'csv'", "`csv`: the same rows as CSV");
/// The answers every `/api/timeseries/*` route may give besides 200.
/// What a `/api/timeseries/*` route answers with `?format=csv`.
const TS_CSV: &str = "CSV (`?format=csv`): a header line, then one line per row";
const TS_ERRORS: &[(u16, &str, &str)] = &[
    (404, "Unknown `gateway`", "@UnknownId"),
    (
        422,
        "A bad parameter (FastAPI's error shape)",
        "@ValidationError",
    ),
];

pub const TS_TODAY: Doc = Doc {
    params: &[GATEWAY_Q, FORMAT_Q],
    errors: TS_ERRORS,
    also: Some(("text/plain", TS_CSV)),
    ..doc("{enabled: bool, gateways: {*: @Day}, server_time: num, total: @Day}")
};
pub const TS_DAILY: Doc = Doc {
    params: &[
        q("days", "int", "How many days (1–1000, default 7; clamped)"),
        q("start", "str", "First day, YYYY-MM-DD"),
        q("end", "str", "Last day, YYYY-MM-DD"),
        GATEWAY_Q,
        FORMAT_Q,
    ],
    errors: TS_ERRORS,
    also: Some(("text/plain", TS_CSV)),
    ..doc("{enabled: bool, days: [{day: str, gateways: {*: @Day}, total: @Day}], last_updated: num|null}")
};
pub const TS_TREND: Doc = Doc {
    params: &[
        q(
            "hours",
            "int",
            "Hours back from now (1–17520, default 24; clamped)",
        ),
        q("start", "num", "Start, Unix seconds"),
        q("end", "num", "End, Unix seconds (default now)"),
        q(
            "points",
            "int",
            "About how many buckets (default 360; clamped)",
        ),
        GATEWAY_Q,
        FORMAT_Q,
    ],
    errors: TS_ERRORS,
    also: Some(("text/plain", TS_CSV)),
    ..doc(
        "{enabled: bool, hours: int, bucket_seconds: num, start: num, end: num, count: int,
          points: [{ts: num, solar_kw: num, home_kw: num, battery_kw: num, grid_kw: num,
                    battery_level: num|null}],
          last_updated: num|null}",
    )
};
pub const TS_SAMPLES: Doc = Doc {
    params: &[
        q("limit", "int", "Most slots (≤ 10000; clamped)"),
        q("start", "num", "Start, Unix seconds"),
        q("end", "num", "End, Unix seconds"),
        GATEWAY_Q,
        FORMAT_Q,
    ],
    errors: TS_ERRORS,
    also: Some(("text/plain", TS_CSV)),
    ..doc("{enabled: bool, count: int,
          samples: [{gateway_id: str, ts: num, solar_w: num, home_w: num, battery_charge_w: num,
                     battery_discharge_w: num, grid_import_w: num, grid_export_w: num,
                     soe: num|null}]}")
};
pub const TS_STATUS: Doc = Doc {
    params: &[GATEWAY_Q, q("format", "'json'", "JSON only (`csv`: 422)")],
    errors: TS_ERRORS,
    ..doc(
        "{enabled: bool, retention_seconds: int, daily_retention_seconds: int, db_file: str,
          db_size_bytes: int, samples: int, daily_rows: int, signals_enabled: bool,
          gateways: [str], gateway_names: {*: str}, simulated: bool,
          storage: {*: {simulated: bool, path: str|null, persisted: bool, file_bytes: int,
                        heap_bytes: int, zone: str, step_seconds: int,
                        archives: [{slot_seconds: int, slots: int, filled: int,
                                    oldest_ts: int|null, newest_ts: int|null}],
                        days: int, days_capacity: int, first_day: str|null,
                        last_day: str|null, last_sample_ts: num|null, dirty_pages: int,
                        flushes: int, page_writes: int, write_failures: int,
                        last_error: str|null, open_problems: [str]}},
          *: any}",
    )
};
pub const METRICS: Doc = Doc {
    also: Some((
        "application/openmetrics-text",
        "OpenMetrics 1.0 text, for `Accept: application/openmetrics-text`",
    )),
    ..doc("Prometheus text exposition format 0.0.4 (gzip with `Accept-Encoding: gzip`)")
};
const UPGRADE: (u16, &str, &str) = (426, "Not a WebSocket upgrade request", "@Error");
pub const WS_GATEWAY: Doc = Doc {
    params: &[ID],
    errors: &[UPGRADE, UNKNOWN_ID],
    ..doc("@Summary")
};
pub const WS_AGGREGATE: Doc = Doc {
    errors: &[UPGRADE],
    ..doc("@Summary")
};
pub const MQTT_STATUS: Doc = doc(
    "{enabled: bool, host: str|null, port: int, connected: bool, topic_prefix: str,
      ha_discovery: bool, qos: int, retain: bool, tls: bool, connected_since: num|null,
      messages_sent: int, messages_dropped: int, last_error: str|null}",
);
pub const OPENAPI: Doc = doc("{openapi: str, info: object, paths: object, components: object}");
pub const PAGE: Doc = doc("HTML page");

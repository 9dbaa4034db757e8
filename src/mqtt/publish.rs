//! The `mqtt-publish` thread's work: on each wake-up, read the current snapshot of every
//! gateway, render its state and discovery messages and hand the changed ones (all of them at
//! least every [`FULL_REFRESH`]) to the client without waiting. Split from `run.rs` along the
//! seam between the connection (threads, client, commands) and what is published.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{discovery, lock, state, Flags, Shared, FULL_REFRESH, REMOVE_AFTER};
use crate::render::Summary;
use crate::snapshot::State;

/// What has been sent for one gateway.
#[derive(Default)]
struct Sent {
    /// State topic → last payload.
    state: HashMap<String, String>,
    /// Discovery config topic → (payload, when its data was last seen).
    discovery: BTreeMap<String, (String, Instant)>,
    /// The control entities not announced were cleared since the last (re)discovery.
    controls_cleared: bool,
}

pub(super) struct Publisher {
    sh: Arc<Shared>,
    gateways: Vec<Sent>,
    aggregate: Sent,
    last_full: Option<Instant>,
    /// A round was cut short: resend everything next time.
    force_full: bool,
    /// No publish listener: treat every wake-up as "dirty" (unchanged topics are not re-sent).
    poll_every_wake: bool,
}

impl Publisher {
    pub(super) fn new(sh: Arc<Shared>, poll_every_wake: bool) -> Publisher {
        let n = sh.ctx.hub.len();
        Publisher {
            sh,
            gateways: (0..n).map(|_| Sent::default()).collect(),
            aggregate: Sent::default(),
            last_full: None,
            force_full: false,
            poll_every_wake,
        }
    }

    pub(super) fn run(mut self) {
        loop {
            let mut flags = {
                let mut f = lock(&self.sh.flags);
                if !f.dirty && !f.resend && !f.rediscover && !self.sh.stopping() {
                    f = self
                        .sh
                        .wake
                        .wait_timeout(f, Duration::from_secs(1))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                std::mem::take(&mut *f)
            };
            if self.sh.stopping() {
                return;
            }
            if !self.sh.status.connected() {
                continue;
            }
            flags.dirty |= self.poll_every_wake;
            self.round(flags);
        }
    }

    fn forget_discovery(&mut self) {
        for g in self.gateways.iter_mut().chain([&mut self.aggregate]) {
            g.discovery.clear();
            g.controls_cleared = false;
        }
    }

    fn round(&mut self, flags: Flags) {
        let resend = flags.resend || self.force_full;
        if resend {
            for g in self.gateways.iter_mut().chain([&mut self.aggregate]) {
                g.state.clear();
            }
            self.forget_discovery();
            if !self
                .sh
                .send(&format!("{}/availability", self.sh.prefix), "online", true)
            {
                return;
            }
        }
        if flags.rediscover {
            self.forget_discovery();
        }
        let full = resend || self.last_full.is_none_or(|t| t.elapsed() >= FULL_REFRESH);
        if !(flags.dirty || full || flags.rediscover) {
            return;
        }
        self.force_full = false;
        if full {
            self.last_full = Some(Instant::now());
        }
        if !self.publish_all(full) {
            self.force_full = true;
        }
    }

    /// One pass over every gateway (and the site total); false when the client queue filled.
    fn publish_all(&mut self, full: bool) -> bool {
        let sh = self.sh.clone();
        let hub = &sh.ctx.hub;
        let now = Instant::now();
        let mut summaries: Vec<Summary> = Vec::new();
        let powerwalls = hub.has_powerwalls();
        let mut energy: Vec<Vec<(usize, f64)>> = Vec::new();
        let mut any_online = false;
        let mut all_fresh = true;
        for i in 0..hub.len() {
            let Some(view) = hub.view(i, now) else {
                continue;
            };
            let Some(sent) = self.gateways.get_mut(i) else {
                continue;
            };
            let snap = &view.snapshot;
            let online = view.state == State::Online;
            any_online |= online;
            let facade = view.fresh.then_some(&*view.facade);
            let base = format!("{}/{}", sh.prefix, snap.id);
            if let (Some(ha), Some(f)) = (&sh.ha, facade) {
                let d = device(&sh, i, &snap.id, &snap.name, f);
                let docs = discovery::gateway(&sh.prefix, ha, &d);
                let control_topics = discovery::control_topics(ha, &snap.id);
                if !send_discovery(&sh, sent, docs, Some(control_topics), now) {
                    return false;
                }
            }
            let msgs = state::gateway(&base, &snap.name, online, facade, &hub.settings);
            if !send_state(&sh, sent, msgs, full) {
                return false;
            }
            match facade {
                Some(f) => {
                    summaries.push(
                        view.snapshot
                            .good
                            .as_ref()
                            .map(|g| g.summary.site_part(snap.solar_only, powerwalls))
                            .unwrap_or_default(),
                    );
                    energy.push(state::energy_counters(f, &hub.settings));
                }
                None => all_fresh = false,
            }
        }
        if hub.len() < 2 || hub.index_of("aggregate").is_some() {
            return true;
        }
        if let Some(ha) = &sh.ha {
            let docs = discovery::aggregate(&sh.prefix, ha);
            if !send_discovery(&sh, &mut self.aggregate, docs, None, now) {
                return false;
            }
        }
        let total = Summary::total(summaries.iter());
        // A lifetime counter summed over part of the site would fall when a gateway drops out,
        // which Home Assistant reads as a meter reset: publish it only when every gateway
        // reports it.
        let mut sums = Vec::new();
        if all_fresh {
            for k in 0..state::ENERGY.len() {
                let vals: Vec<f64> = energy
                    .iter()
                    .filter_map(|e| e.iter().find(|(i, _)| *i == k).map(|(_, v)| *v))
                    .collect();
                if vals.len() == energy.len() && !vals.is_empty() {
                    sums.push((k, vals.iter().sum()));
                }
            }
        }
        let base = format!("{}/aggregate", sh.prefix);
        let msgs = state::aggregate(&base, &total, any_online, &sums);
        send_state(&sh, &mut self.aggregate, msgs, full)
    }
}

/// What discovery needs of gateway `i` this tick.
fn device<'a>(
    sh: &Shared,
    i: usize,
    id: &'a str,
    name: &'a str,
    f: &'a crate::gateway::facade::Facade,
) -> discovery::Device<'a> {
    let agg = crate::render::legacy::processed_aggregates(f, &sh.ctx.hub.settings);
    let (voltage, current) = state::grid_metrics(agg.as_ref());
    // Unpacked once for the meters and the units.
    let vitals = f.vitals();
    discovery::Device {
        id,
        name,
        version: f.version.as_deref(),
        din: f.din.as_deref(),
        pw3: f.pw3,
        strings: f
            .strings
            .as_ref()
            .and_then(|s| s.as_object())
            .map(|m| m.keys().filter(|k| state::level_ok(k)).cloned().collect())
            .unwrap_or_default(),
        meters: state::remote_meters(vitals.as_ref()),
        units: state::unit_signals(f, vitals.as_ref()),
        batteries: state::batteries(f),
        grid_voltage: voltage.is_some(),
        grid_current: current.is_some(),
        controls: if sh.ctx.control.can_write(i) {
            sh.controls
        } else {
            0
        },
    }
}

/// Sends new or changed discovery documents, clears the ones gone for [`REMOVE_AFTER`] and
/// the control entities not announced.
fn send_discovery(
    sh: &Shared,
    sent: &mut Sent,
    docs: Vec<(String, String)>,
    control_topics: Option<Vec<String>>,
    now: Instant,
) -> bool {
    let fresh = sent.discovery.is_empty();
    let mut new = 0;
    for (topic, payload) in &docs {
        let changed = sent.discovery.get(topic).is_none_or(|(p, _)| p != payload);
        if changed {
            if !sh.send(topic, payload, true) {
                return false;
            }
            new += 1;
        }
        sent.discovery.insert(topic.clone(), (payload.clone(), now));
    }
    let gone: Vec<String> = sent
        .discovery
        .iter()
        .filter(|(_, (_, seen))| now.duration_since(*seen) >= REMOVE_AFTER)
        .map(|(t, _)| t.clone())
        .collect();
    for topic in gone {
        if !sh.send(&topic, "", true) {
            return false;
        }
        sent.discovery.remove(&topic);
    }
    if let Some(topics) = control_topics.filter(|_| !sent.controls_cleared) {
        for t in topics {
            if !sent.discovery.contains_key(&t) && !sh.send(&t, "", true) {
                return false;
            }
        }
        sent.controls_cleared = true;
    }
    if new > 0 {
        log::info!(
            "MQTT HA discovery published: {new} {}entities",
            if fresh { "" } else { "new or changed " }
        );
    }
    true
}

/// Sends state topics whose payload changed (all of them when `full`).
fn send_state(sh: &Shared, sent: &mut Sent, msgs: Vec<(String, String)>, full: bool) -> bool {
    for (topic, payload) in msgs {
        if !full && sent.state.get(&topic) == Some(&payload) {
            continue;
        }
        if !sh.send(&topic, &payload, sh.retain) {
            return false;
        }
        sent.state.insert(topic, payload);
    }
    true
}

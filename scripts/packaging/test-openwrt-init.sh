#!/usr/bin/env bash
# Tests the OpenWrt init script's translation of /etc/config/pypowerwall-server into the server's
# YAML configuration, with the real binary reading the result.
#
#   scripts/packaging/test-openwrt-init.sh [BINARY]     (default: dist/x86_64-unknown-linux-musl/…)
#
# The init script runs under BusyBox ash (OpenWrt's shell) with small stand-ins for what OpenWrt
# provides (/lib/functions.sh: config_load/config_get/config_get_bool/config_foreach over a UCI
# file, user_add…; procd.sh: procd_set_param…, recorded to a file). Then the generated YAML goes
# to the server, pointed at the simulator whose password holds quotes, a backslash, '#' and ': ',
# and leading zeros: the server must poll it (so the password arrived intact), list the
# gateways by id with their exact names, and skip the disabled one.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PKG_ROOT"
pkg_apt busybox curl python3

bin="${1:-$(pkg_bin x86_64-unknown-linux-musl)}"
[ -x "$bin" ] || pkg_die "no binary $bin: run scripts/release.sh --target x86_64-unknown-linux-musl"
work="$PKG_ROOT/target/openwrt-init-test"
rm -rf "$work"
mkdir -p "$work/run"

sp=$(pkg_free_port)
hp=$(pkg_free_port)
pwd_tricky='00"12\3 #4: x'
name_tricky='Main "house" \ #1: east'

# The UCI file: the shipped default, then a test one (gateway pointed at the simulator).
cp openwrt/pypowerwall-server/files/pypowerwall-server.config "$work/default.uci"
cat >"$work/test.uci" <<EOF
config server 'server'
	option enabled '1'
	option port '$hp'
	option bind '127.0.0.1'
	option poll_interval '1'
	option default_gateway 'house'
	option debug '0'
	option neg_solar 'yes'
	option auth_path '$work/auth'

config gateway 'house'
	option name '$name_tricky'
	option host '127.0.0.1:$sp'
	option gw_pwd '$pwd_tricky'
	option poll_interval '2'
	option timeout '3'

config gateway 'cabin'
	option enabled '0'
	option name 'Cabin'
	option host '10.0.5.20'
	option gw_pwd 'KLMNOPQRST'
EOF

# Stand-ins for OpenWrt's /lib/functions.sh and /lib/functions/procd.sh, for BusyBox ash.
cat >"$work/openwrt-shim.sh" <<'EOF'
config_load() {
	eval "$(awk -v q="'" '
		function val(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s)
			if (s ~ /^'\''.*'\''$/ || s ~ /^".*"$/) s = substr(s, 2, length(s) - 2)
			gsub(q, q "\\" q q, s); return q s q }
		/^[ \t]*#/ || /^[ \t]*$/ { next }
		$1 == "config" { n++; name = (NF >= 3) ? $3 : "cfg" n; gsub(/['\''"]/, "", name)
			print "CONFIG_SECTIONS=\"$CONFIG_SECTIONS " name "\"; CONFIG_" name "_TYPE=" $2; next }
		$1 == "option" { line = $0; sub(/^[ \t]*option[ \t]+[^ \t]+[ \t]+/, "", line)
			print "CONFIG_" name "_" $2 "=" val(line) }
	' "$UCI_FILE")"
}
config_get() {
	local __v
	eval "__v=\${CONFIG_$2_$3-}"
	[ -n "$__v" ] || __v="${4-}"
	eval "$1=\$__v"
}
config_get_bool() {
	local __b
	config_get __b "$2" "$3" "${4-}"
	case "$__b" in
	1 | on | true | yes | enabled) __b=1 ;;
	0 | off | false | no | disabled) __b=0 ;;
	*) __b="${4-}" ;;
	esac
	eval "$1=\$__b"
}
config_foreach() {
	local __f="$1" __t="$2" __s __st
	for __s in $CONFIG_SECTIONS; do
		eval "__st=\${CONFIG_${__s}_TYPE}"
		[ "$__st" = "$__t" ] && "$__f" "$__s"
	done
	return 0
}
group_exists() { return 1; }
user_exists() { return 1; }
group_add() { echo "group_add $*" >>"$PROCD_LOG"; }
user_add() { echo "user_add $*" >>"$PROCD_LOG"; }
chown() { echo "chown $*" >>"$PROCD_LOG"; }
logger() { echo "logger $*" >>"$PROCD_LOG"; }
procd_open_instance() { echo "open_instance" >>"$PROCD_LOG"; }
procd_set_param() { echo "param $*" >>"$PROCD_LOG"; }
procd_close_instance() { echo "close_instance" >>"$PROCD_LOG"; }
procd_add_reload_trigger() { echo "reload_trigger $*" >>"$PROCD_LOG"; }
EOF

run_init() { # UCI_FILE LOG -> exit status of start_service
    UCI_FILE="$1" PROCD_LOG="$2" RUN_DIR="$work/run" busybox sh -c '
        . "$0/openwrt-shim.sh"
        . "$1"
        start_service' "$work" "$PKG_ROOT/openwrt/pypowerwall-server/files/pypowerwall-server.init"
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# 1. The shipped default is disabled: start_service does nothing and says so.
run_init "$work/default.uci" "$work/default.log" 2>"$work/default.err" || fail "default config: start_service failed"
grep -q disabled "$work/default.err" || fail "default config: no 'disabled' message"
[ ! -e "$work/default.log" ] || ! grep -q open_instance "$work/default.log" || fail "default config started an instance"

# 2. No enabled gateway: refuses to start.
sed -e "s/option enabled '0'/option enabled '1'/" "$work/default.uci" | sed -e '/^config gateway/,$d' >"$work/nogw.uci"
if run_init "$work/nogw.uci" "$work/nogw.log" 2>/dev/null; then fail "no gateway: start_service succeeded"; fi
grep -q "logger.*no enabled 'gateway'" "$work/nogw.log" || fail "no gateway: nothing logged"

# 3. The test config: the procd instance and the YAML.
run_init "$work/test.uci" "$work/procd.log" || fail "start_service failed"
conf="$work/run/config.yaml"
[ -f "$conf" ] || fail "no $conf"
[ "$(stat -c %a "$conf")" = 600 ] || fail "$conf is not 0600"
grep -qx "param command /usr/bin/pypowerwall-server --config $conf" "$work/procd.log" || fail "procd command"
grep -qx "param user pypowerwall" "$work/procd.log" || fail "procd user"
grep -qx "param env PW_AUTH_PATH=$work/auth" "$work/procd.log" || fail "procd env"
grep -qx "param file /etc/config/pypowerwall-server" "$work/procd.log" || fail "procd file trigger"
grep -q "^chown pypowerwall:pypowerwall $conf.new" "$work/procd.log" || fail "config not handed to the service user"
grep -q "cabin" "$conf" && fail "the disabled gateway is in the YAML"

# 4. The server reads it and polls the simulator with the tricky password.
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
"$bin" sim --listen "127.0.0.1:$sp" --fixture pw3 --gw-pwd "$pwd_tricky" >"$work/sim.log" 2>&1 &
pids+=($!)
env -i PATH="$PATH" "$bin" --config "$conf" >"$work/server.log" 2>&1 &
pids+=($!)
ok=0
for _ in $(seq 1 60); do
    if "$bin" healthcheck "http://127.0.0.1:$hp/health" 2>/dev/null; then
        ok=1
        break
    fi
    sleep 0.5
done
[ "$ok" = 1 ] || {
    cat "$conf" "$work/server.log" >&2
    fail "the server never polled the simulator with the generated configuration"
}
curl -fsS "http://127.0.0.1:$hp/api/gateways" >"$work/gateways.json"
NAME="$name_tricky" python3 - "$work/gateways.json" <<'EOF' || fail "/api/gateways does not match the UCI config"
import json, os, sys
doc = json.load(open(sys.argv[1]))
gws = doc["gateways"] if isinstance(doc, dict) else doc
ids = [g["id"] for g in gws]
assert ids == ["house"], ids
assert gws[0]["name"] == os.environ["NAME"], gws[0]["name"]
EOF
echo "openwrt init: default disabled; refuses without gateways; UCI -> YAML (0600, service user) read by the server, which polled the simulator (password with quotes/backslash/#/: and leading zeros intact), gateway name exact, disabled gateway left out"

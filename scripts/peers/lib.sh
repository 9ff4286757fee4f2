# shellcheck shell=bash
# Shared helpers of the peer scripts (prosody.sh, ejabberd.sh). Sourced, not run.
#
# Every peer lives in its own private directory under $MEERKAT_PEERS_DIR
# (default /tmp/meerkat-peers): configuration, certificate, data, logs and
# pid file. Nothing under /etc or /var is changed, and the packaged system
# services are never started.

set -euo pipefail

PEERS_DIR=${MEERKAT_PEERS_DIR:-/tmp/meerkat-peers}

die() { echo "peers: $*" >&2; exit 1; }
say() { echo "peers: $*" >&2; }

# ensure_packages PKG... installs the Debian packages that are missing. The
# packages' maintainer scripts must not start their system-wide services (they
# would listen on the default ports, on every interface): a policy-rc.d that
# denies every start is put in place for the duration of the install, unless
# one is already there.
ensure_packages() {
	local missing=()
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]}"
	local policy=/usr/sbin/policy-rc.d own_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
	fi
	say "installing ${missing[*]}"
	local rc=0
	{ apt-get install -y --no-install-recommends "${missing[@]}" >"$PEERS_DIR/apt.log" 2>&1 ||
		{ apt-get update >>"$PEERS_DIR/apt.log" 2>&1 &&
			apt-get install -y --no-install-recommends "${missing[@]}" >>"$PEERS_DIR/apt.log" 2>&1; }; } || rc=$?
	[ "$own_policy" -eq 1 ] && rm -f "$policy"
	[ "$rc" -eq 0 ] || die "apt-get install ${missing[*]} failed, see $PEERS_DIR/apt.log"
}

# make_cert DIR OWNER writes a self-signed certificate for "localhost"
# (DIR/localhost.crt, DIR/localhost.key and both in DIR/localhost.pem),
# readable by OWNER.
make_cert() {
	local dir=$1 owner=$2
	[ -s "$dir/localhost.pem" ] && return 0
	openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 \
		-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
		-keyout "$dir/localhost.key" -out "$dir/localhost.crt" >/dev/null 2>&1 ||
		die "openssl could not make a certificate in $dir"
	cat "$dir/localhost.crt" "$dir/localhost.key" >"$dir/localhost.pem"
	chown "$owner" "$dir/localhost.crt" "$dir/localhost.key" "$dir/localhost.pem"
	chmod 600 "$dir/localhost.key" "$dir/localhost.pem"
}

# wait_port PORT SECONDS waits until something listens on 127.0.0.1:PORT.
wait_port() {
	local port=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# port_free PORT fails when something already listens on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# use_bench_cert DIR copies the certificate of $BENCH_CERT_DIR (localhost.crt
# and localhost.key, made by bench/compare) into DIR when that variable is
# set, so that every server of a comparison presents the same key and does
# the same TLS handshake work. make_cert then keeps it.
use_bench_cert() {
	local dir=$1
	[ -n "${BENCH_CERT_DIR:-}" ] || return 0
	[ -s "$BENCH_CERT_DIR/localhost.crt" ] && [ -s "$BENCH_CERT_DIR/localhost.key" ] ||
		die "BENCH_CERT_DIR=$BENCH_CERT_DIR has no localhost.crt and localhost.key"
	cp "$BENCH_CERT_DIR/localhost.crt" "$BENCH_CERT_DIR/localhost.key" "$dir/"
	cat "$dir/localhost.crt" "$dir/localhost.key" >"$dir/localhost.pem"
	chmod 600 "$dir/localhost.key" "$dir/localhost.pem"
}

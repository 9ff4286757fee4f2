#!/usr/bin/env bash
# test.sh — run the stories (TestStory… in ./story) against Meerkat, Prosody
# and ejabberd: what "make peers-test" does.
#
# Each peer is started with its script (which installs the Debian package
# when absent: that needs apt-get and root). A peer that is not installed
# and cannot be (no apt-get, not root, or the install failed) is skipped
# with a message; with no peer at all the run is skipped, since "make test"
# already runs the stories against Meerkat alone. A peer that is installed
# but does not start is an error. The peers are left running for the next
# run: "make peers-stop" stops them.
#
# A story that fails on Meerkat but passes on both peers is a bug in
# Meerkat; a story that fails on all three is a bug in the story.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
GO=${GO:-go}

say() { echo "peers-test: $*" >&2; }

# installed PKG: the Debian package is installed (or, without dpkg, its
# control command is on PATH: the scripts would not get further anyway).
installed() {
	case $1 in
	prosody) cmd=prosodyctl ;;
	ejabberd) cmd=ejabberdctl ;;
	esac
	if command -v dpkg-query >/dev/null; then
		dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
	else
		command -v "$cmd" >/dev/null
	fi
}

list=meerkat
for p in prosody ejabberd; do
	if [ "$(id -u)" -ne 0 ]; then
		# The scripts chown the peer's directory to the package's user and
		# run the daemon as that user.
		say "$p skipped: the peer scripts need root (to install with apt-get and to run the daemon as the $p user)"
		continue
	fi
	if ! installed "$p" && ! command -v apt-get >/dev/null; then
		say "$p skipped: not installed and no apt-get to install it"
		continue
	fi
	if ! "$here/$p.sh" start; then
		if ! installed "$p"; then
			say "$p skipped: it could not be installed (see ${MEERKAT_PEERS_DIR:-/tmp/meerkat-peers}/apt.log)"
			continue
		fi
		say "$p is installed but did not start"
		exit 1
	fi
	# The peer's addresses, in case its ports were moved.
	eval "$("$here/$p.sh" env)"
	list+=,$p
done

if [ "$list" = meerkat ]; then
	say "skipped: no peer server available (\"make test\" runs the stories against Meerkat alone)"
	exit 0
fi
export MEERKAT_STORY_PEER=$list
say "MEERKAT_STORY_PEER=$list $GO test -race -count=1 -run 'TestStory' ./story/"
cd "$root" && exec "$GO" test -race -count=1 -run 'TestStory' ./story/

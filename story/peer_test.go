package story

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The story tests of this package run against real servers started by
// scripts/peers (see its README): set MEERKAT_STORY_PEER to a
// comma-separated list of "prosody" and "ejabberd". Without it they skip.
// The addresses and user-management commands default to what the scripts
// use; the MEERKAT_STORY_* variables printed by "scripts/peers/<peer>.sh
// env" override them.

type peer struct {
	name string
	srv  Server
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func peersDir() string { return envOr("MEERKAT_PEERS_DIR", "/tmp/meerkat-peers") }

func peerServer(name string) (Server, bool) {
	switch name {
	case "prosody":
		cfg := envOr("MEERKAT_STORY_PROSODY_CONFIG", filepath.Join(peersDir(), "prosody", "prosody.cfg.lua"))
		return Prosody("localhost", map[Transport]string{
			TCP:       envOr("MEERKAT_STORY_PROSODY_TCP", "127.0.0.1:25222"),
			DirectTLS: envOr("MEERKAT_STORY_PROSODY_TLS", "127.0.0.1:25223"),
		}, "prosodyctl", "--config", cfg), true
	case "ejabberd":
		dir := envOr("MEERKAT_STORY_EJABBERD_DIR", filepath.Join(peersDir(), "ejabberd"))
		return Ejabberd("localhost", map[Transport]string{
			TCP:       envOr("MEERKAT_STORY_EJABBERD_TCP", "127.0.0.1:35222"),
			DirectTLS: envOr("MEERKAT_STORY_EJABBERD_TLS", "127.0.0.1:35223"),
		}, "ejabberdctl", "--config-dir", dir, "--ctl-config", filepath.Join(dir, "ejabberdctl.cfg")), true
	}
	return nil, false
}

// forEachPeer runs f as a subtest per configured peer, or skips.
func forEachPeer(t *testing.T, f func(t *testing.T, p peer)) {
	t.Helper()
	list := os.Getenv("MEERKAT_STORY_PEER")
	if list == "" {
		t.Skip("no peer server: start one with scripts/peers/prosody.sh start (or ejabberd.sh) and set MEERKAT_STORY_PEER=prosody (or ejabberd, or both comma-separated)")
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		srv, ok := peerServer(name)
		if !ok {
			t.Fatalf("MEERKAT_STORY_PEER: unknown peer %q (want prosody or ejabberd)", name)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, peer{name: name, srv: srv})
		})
	}
}

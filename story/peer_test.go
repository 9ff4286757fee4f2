package story_test

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
)

// The stories of story_test.go run against every server named in
// MEERKAT_STORY_PEER, a comma-separated list of peers:
//
//	meerkat   an in-process Meerkat (internal/servertest), one per story
//	prosody   a Prosody started by scripts/peers/prosody.sh
//	ejabberd  an ejabberd started by scripts/peers/ejabberd.sh
//
// Unset, it is "meerkat": the stories always run against Meerkat. "make
// peers-test" starts the peers and runs all three. The addresses and
// user-management commands of the peers default to what the scripts use;
// the MEERKAT_STORY_* variables printed by "scripts/peers/<peer>.sh env"
// override them.
//
// A story that fails on Meerkat but passes on both peers is a bug in
// Meerkat; a story that fails on all three is a bug in the story.

// Capabilities a story may need beyond the core that every peer has
// (RFC 6120 streams, SASL and binding; RFC 6121 §8 delivery to available
// resources and presence among the user's own resources; XEP-0030 disco,
// XEP-0199 ping, XEP-0092 version, XEP-0202 time; XEP-0368 direct TLS).
const (
	capRoster       = "roster"       // RFC 6121 §2 roster management
	capSubscription = "subscription" // RFC 6121 §3 presence subscriptions
	capOffline      = "offline"      // XEP-0160 offline storage (RFC 6121 §8.5.2.1.1)
	capVcard        = "vcard"        // XEP-0054 vcard-temp
	capMAM          = "mam"          // XEP-0313 message archive
	capSM           = "sm"           // XEP-0198 stream management
)

var allCaps = []string{capRoster, capSubscription, capOffline, capVcard, capMAM, capSM}

// peer is one server the stories run against.
type peer struct {
	name string
	srv  story.Server
}

// peerKind describes a peer before it is started.
type peerKind struct {
	// caps are the capabilities the peer has; a story needing another is
	// skipped with "<peer>: needs <cap> (<lacking>)".
	caps    []string
	lacking string
	// server returns the server for one story (t is the peer's subtest).
	server func(t *testing.T) story.Server
}

var peerKinds = map[string]peerKind{
	"meerkat": {
		caps:    allCaps,
		lacking: "not implemented yet",
		server:  func(t *testing.T) story.Server { return servertest.Start(t) },
	},
	"prosody": {
		caps:    allCaps, // modules enabled by scripts/peers/prosody.sh
		lacking: "not enabled in scripts/peers/prosody.sh",
		server:  func(t *testing.T) story.Server { return external(t, "prosody", prosody()) },
	},
	"ejabberd": {
		caps:    allCaps, // modules enabled by scripts/peers/ejabberd.sh
		lacking: "not enabled in scripts/peers/ejabberd.sh",
		server:  func(t *testing.T) story.Server { return external(t, "ejabberd", ejabberd()) },
	},
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func peersDir() string { return envOr("MEERKAT_PEERS_DIR", "/tmp/meerkat-peers") }

func prosody() *story.External {
	cfg := envOr("MEERKAT_STORY_PROSODY_CONFIG", filepath.Join(peersDir(), "prosody", "prosody.cfg.lua"))
	return story.Prosody("localhost", map[story.Transport]string{
		story.TCP:       envOr("MEERKAT_STORY_PROSODY_TCP", "127.0.0.1:25222"),
		story.DirectTLS: envOr("MEERKAT_STORY_PROSODY_TLS", "127.0.0.1:25223"),
		story.WebSocket: envOr("MEERKAT_STORY_PROSODY_WS", "wss://127.0.0.1:25443/xmpp-websocket"),
		// Prosody serves BOSH at https://127.0.0.1:25443/http-bind, but the
		// story client fails there after SASL (the restarted stream's
		// features arrive before its header): off unless the variable
		// names the URL.
		story.BOSH: os.Getenv("MEERKAT_STORY_PROSODY_BOSH"),
	}, "prosodyctl", "--config", cfg)
}

func ejabberd() *story.External {
	dir := envOr("MEERKAT_STORY_EJABBERD_DIR", filepath.Join(peersDir(), "ejabberd"))
	return story.Ejabberd("localhost", map[story.Transport]string{
		story.TCP:       envOr("MEERKAT_STORY_EJABBERD_TCP", "127.0.0.1:35222"),
		story.DirectTLS: envOr("MEERKAT_STORY_EJABBERD_TLS", "127.0.0.1:35223"),
		story.WebSocket: envOr("MEERKAT_STORY_EJABBERD_WS", "wss://127.0.0.1:35443/ws"),
		// ejabberd serves BOSH at https://127.0.0.1:35443/bosh, but with the
		// story client an IQ answered by the server gets no response: off
		// unless the variable names the URL.
		story.BOSH: os.Getenv("MEERKAT_STORY_EJABBERD_BOSH"),
	}, "ejabberdctl", "--config-dir", dir, "--ctl-config", filepath.Join(dir, "ejabberdctl.cfg"))
}

// reachable remembers, per external peer, whether it listens: a peer that
// was listed but not started fails every story with one clear message.
var reachable sync.Map // name → func() error

// external returns srv after checking, once per test binary, that it
// listens on its STARTTLS address.
func external(t *testing.T, name string, srv *story.External) story.Server {
	t.Helper()
	check, _ := reachable.LoadOrStore(name, sync.OnceValue(func() error {
		addr, _ := srv.Addr(story.TCP)
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}))
	if err := check.(func() error)(); err != nil {
		t.Fatalf("%s is not running (%v): start it with scripts/peers/%s.sh start, or leave it out of MEERKAT_STORY_PEER", name, err, name)
	}
	return srv
}

// forEachPeer runs f as a parallel subtest per peer of MEERKAT_STORY_PEER
// ("meerkat" when unset). needs lists the capabilities the story relies
// on beyond the core; a peer that lacks one skips the story.
func forEachPeer(t *testing.T, needs []string, f func(t *testing.T, p peer)) {
	t.Helper()
	for _, c := range needs {
		if !slices.Contains(allCaps, c) {
			t.Fatalf("story needs unknown capability %q (known: %s)", c, strings.Join(allCaps, ", "))
		}
	}
	list := envOr("MEERKAT_STORY_PEER", "meerkat")
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		kind, ok := peerKinds[name]
		if !ok {
			t.Fatalf("MEERKAT_STORY_PEER: unknown peer %q (want meerkat, prosody or ejabberd)", name)
		}
		t.Run(name, func(t *testing.T) {
			for _, c := range needs {
				if !slices.Contains(kind.caps, c) {
					t.Skipf("%s: needs %s (%s)", name, c, kind.lacking)
				}
			}
			t.Parallel()
			f(t, peer{name: name, srv: kind.server(t)})
		})
	}
}

// randomHex returns 2n random hexadecimal digits.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

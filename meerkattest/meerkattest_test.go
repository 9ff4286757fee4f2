package meerkattest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/meerkattest"
	"github.com/meerkat-xmpp/meerkat/story"
)

// TestStoryOverEachTransport: the story of ExampleStart, over every
// transport the server offers.
func TestStoryOverEachTransport(t *testing.T) {
	t.Parallel()
	srv := meerkattest.Start(t)
	for _, tr := range []story.Transport{story.TCP, story.DirectTLS, story.WebSocket, story.BOSH} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			if _, ok := srv.Addr(tr); !ok {
				t.Fatalf("%s not offered", tr)
			}
			story.RunWith(t, srv, story.Users{"alice": 1, "bob": 2}, story.Options{Transport: tr}, func(alice, bob1, bob2 *story.Client) {
				alice.Send(story.Chat(bob2, "Hi, Bob!"))
				bob2.Expect(story.IsChat("Hi, Bob!"), story.IsFrom(alice))
				bob1.ExpectNothing(100*time.Millisecond, story.IsChat("Hi, Bob!"))
			})
		})
	}
}

// TestOptions: domains, settings and modules from TOML.
func TestOptions(t *testing.T) {
	t.Parallel()
	srv := meerkattest.Start(t,
		meerkattest.Config("[c2s]\nmax_stanza_bytes = 12000\n[modules.csi]\nmax_queue = 3\n"),
		meerkattest.Modules("[modules.csi]\nenabled = false\n"), // replaces the section above
		meerkattest.Config("log_level = \"debug\"\n"),           // keeps the rest
		meerkattest.Domains("chat.example.org", "other.example.org"),
	)
	if srv.Domain() != "chat.example.org" || strings.Join(srv.Domains(), " ") != "chat.example.org other.example.org" {
		t.Fatalf("domains %q %q", srv.Domain(), srv.Domains())
	}
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		if alice.Bare().Domain() != "chat.example.org" {
			t.Errorf("user %s", alice.Bare())
		}
		if alice.Features().Child("csi", "urn:xmpp:csi:0") != nil {
			t.Errorf("csi enabled: %s", alice.Features())
		}
		big := story.Chat(alice, strings.Repeat("x", 13000))
		alice.Send(big)
		alice.Expect(story.IsStreamError("policy-violation"))
	})
}

// TestStop: clients get <system-shutdown/>; stopping twice is fine.
func TestStop(t *testing.T) {
	t.Parallel()
	srv := meerkattest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		alice.Expect(story.IsStreamError("system-shutdown"))
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
	})
}

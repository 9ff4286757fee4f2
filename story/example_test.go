package story_test

import (
	"context"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/story"
)

// The examples compile but do not run: they need a server.

var t = &testing.T{}

var srv story.Server = story.Prosody("localhost", map[story.Transport]string{
	story.TCP:       "127.0.0.1:25222",
	story.DirectTLS: "127.0.0.1:25223",
}, "prosodyctl", "--config", "/tmp/meerkat-peers/prosody/prosody.cfg.lua")

func ExampleRun() {
	story.Run(t, srv, story.Users{"alice": 1, "bob": 2}, func(alice, bob1, bob2 *story.Client) {
		alice.Send(story.Chat(bob2, "Hi, Bob!"))
		bob2.Expect(story.IsChat("Hi, Bob!"), story.IsFrom(alice))
		bob1.ExpectNothing(100*time.Millisecond, story.IsChat("Hi, Bob!"))
	})
}

func ExampleRunWith() {
	opts := story.Options{Transport: story.DirectTLS, StreamManagement: true, Mechanism: story.ScramSHA256}
	story.RunWith(t, srv, story.Users{"alice": 1}, opts, func(alice *story.Client) {
		res := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		story.AssertStanza(t, res, story.IsIQResult(res.Attr("id")))
	})
}

func ExampleDialRaw() {
	r, err := story.DialRaw(context.Background(), srv, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	r.Send("<message><body>unclosed</message>")
	if err := r.ExpectStreamError("not-well-formed"); err != nil {
		t.Fatal(err)
	}
}

func ExampleStampSendTime() {
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		alice.Send(story.StampSendTime(story.Chat(bob, "ping")))
		msg, received := bob.ExpectTimed(story.IsChat("ping"))
		if sent, ok := story.SendTimeOf(msg); ok {
			t.Logf("time to deliver: %s", received.Sub(sent))
		}
	})
}

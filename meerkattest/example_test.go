package meerkattest_test

import (
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/meerkattest"
	"github.com/meerkat-xmpp/meerkat/story"
)

// The examples compile but do not run: they need the *testing.T of a
// test. meerkattest_test.go runs the same stories.

var t = &testing.T{}

func ExampleStart() {
	srv := meerkattest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 2}, func(alice, bob1, bob2 *story.Client) {
		// A message to a full JID reaches that resource only
		// (RFC 6121 §8.5.3).
		alice.Send(story.Chat(bob2, "Hi, Bob!"))
		bob2.Expect(story.IsChat("Hi, Bob!"), story.IsFrom(alice))
		bob1.ExpectNothing(100*time.Millisecond, story.IsChat("Hi, Bob!"))
	})
}

func ExampleConfig() {
	srv := meerkattest.Start(t,
		meerkattest.Domains("chat.example.org"),
		meerkattest.Config(`
			[c2s]
			max_stanza_bytes = 16384
		`),
		meerkattest.Modules(`
			[modules.register]
			enabled = true
		`))
	// Over WebSocket (wss://, with the server's own certificate).
	story.RunWith(t, srv, story.Users{"alice": 1}, story.Options{Transport: story.WebSocket}, func(alice *story.Client) {
		res := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		story.AssertStanza(t, res, story.IsIQResult(res.Attr("id")))
	})
}

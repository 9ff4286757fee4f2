// Package story tests XMPP servers with stories: scripted conversations
// between real clients over real connections, in the manner of
// MongooseIM's Escalus. Alice sends, Bob waits for what should arrive, the
// test asserts; when the expected stanza does not come, the failure says
// what came instead.
//
// # A story
//
//	func TestStoryChat(t *testing.T) {
//		t.Parallel()
//		srv := story.Prosody("localhost", map[story.Transport]string{
//			story.TCP:       "127.0.0.1:25222",
//			story.DirectTLS: "127.0.0.1:25223",
//		}, "prosodyctl", "--config", "/tmp/meerkat-peers/prosody/prosody.cfg.lua")
//
//		story.Run(t, srv, story.Users{"alice": 1, "bob": 2}, func(alice, bob1, bob2 *story.Client) {
//			// A message to a full JID reaches that resource only
//			// (RFC 6121 §8.5.3).
//			alice.Send(story.Chat(bob2, "Hi, Bob!"))
//			msg := bob2.Expect(story.IsChat("Hi, Bob!"), story.IsFrom(alice))
//			story.AssertStanza(t, msg, story.IsTo(bob2))
//			bob1.ExpectNothing(100*time.Millisecond, story.IsChat("Hi, Bob!"))
//
//			// IQs: send and wait for the reply with the same id.
//			res := bob1.IQ(story.Ping(nil))
//			story.AssertStanza(t, res, story.IsIQResult(res.Attr("id")))
//
//			// Roster pushes go to resources that fetched the roster
//			// (RFC 6121 §2.1.6).
//			alice.IQ(story.RosterGet())
//			set := story.RosterSet(bob1.Bare(), "Bob", "Friends")
//			alice.Send(set)
//			alice.Expect(story.IsRosterPush(bob1.Bare()))
//			alice.Expect(story.IsIQResult(set.Attr("id")))
//		})
//	}
//
// Run creates fresh accounts for the users ("alice-1f3a9c0e@localhost"),
// connects one client per resource in parallel, makes them available, and
// calls the function with the clients: users in alphabetical order of
// their names, each user's resources in order ("bob1", "bob2"). On cleanup
// it closes the clients and removes the accounts, so stories can run in
// parallel against one server. RunWith takes Options (transport, SASL
// mechanism, stream management, no initial presence, timeout).
//
// # Servers
//
// A Server is the deployment under test: its domain, where to dial for
// each Transport, the client TLS configuration, and a way to create and
// remove accounts. Package github.com/meerkat-xmpp/meerkat/meerkattest
// starts Meerkat in-process for a test and implements it, so that a story
// needs nothing installed or running:
//
//	srv := meerkattest.Start(t, meerkattest.Modules("[modules.register]\nenabled = true"))
//	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) { … })
//
// External covers any other server, and Prosody and Ejabberd make an
// External whose accounts are managed with prosodyctl or ejabberdctl.
// The repository's scripts/peers start a private Prosody or ejabberd on
// loopback for this package's own tests.
//
// # Clients
//
// A Client connects over TCP with STARTTLS (RFC 6120 §5) or direct TLS
// (XEP-0368), authenticates with the strongest SASL mechanism offered
// (SCRAM-SHA-512, -256, -1, their -PLUS variants with channel binding
// first, then PLAIN; RFC 5802, RFC 7677, RFC 9266, XEP-0440), binds a
// resource (RFC 6120 §7), establishes a legacy session when the server
// requires one (RFC 3921 §3), optionally enables stream management
// (XEP-0198) and sends initial presence. A reader goroutine then queues
// every element the server sends, with its receive time.
//
// The wait functions take elements off the queue: WaitFor (with a
// context, returning errors) and the Expect family (with the client's
// timeout, failing the test). Each takes the first queued element that
// matches its Predicates and leaves the others queued, so a story states
// what it expects without caring about unrelated traffic; Collect takes
// elements in arrival order and ExpectNothing checks that nothing (more)
// arrives. A stream error ends every wait with an error that carries the
// condition, unless the wait was for the <stream:error/> itself
// (IsStreamError).
//
// For the load generator, StampSendTime marks a stanza with its send time
// and SendTimeOf reads it back on the receiving side, where WaitForTimed
// and ExpectTimed give the receive time.
//
// # Raw connections
//
// DialRaw gives a connection driven step by step, for protocol-violation
// tests: send arbitrary bytes, read the server's answers element by
// element, check that the server ends the stream with the right error
// (ExpectStreamError), compare the exact bytes received (Raw.Bytes).
package story

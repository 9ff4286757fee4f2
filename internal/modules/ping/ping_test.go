package ping_test

import (
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
)

// TestStoryPingAnswered: pings to the server and to the own account are
// answered with an empty result (XEP-0199 §4.2).
func TestStoryPingAnswered(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		for _, to := range []story.Addr{story.RawAddr(srv.Domain()), nil, alice.Bare()} {
			res := alice.IQ(story.Ping(to))
			story.AssertStanza(t, res, story.IsIQ("result"))
			if len(res.Children) != 0 {
				t.Errorf("result with payload: %s", res)
			}
		}
	})
}

// TestStoryServerPings: the server pings idle clients (XEP-0199 §4.1) and
// disconnects those that do not answer.
func TestStoryServerPings(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.ping]\ninterval = \"300ms\"\ntimeout = \"500ms\""))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		isPing := []story.Predicate{story.IsIQ("get"), story.HasChild("ping", NS), story.IsFrom(story.RawAddr(srv.Domain()))}
		ping := alice.Expect(isPing...)
		alice.Send(story.IQResult(ping, nil))
		bob.Expect(isPing...)
		// alice answered: she is pinged again later rather than cut off,
		// and an error answer counts as alive too (§4.1). Her next ping
		// comes an interval after her answer, before bob's timeout ends:
		// answered now, not after waiting for bob's stream error, which
		// would leave her only the interval's head start to answer it.
		ping = alice.Expect(isPing...)
		alice.Send(story.IQError(ping, "cancel", "service-unavailable"))
		// bob does not answer: <connection-timeout/>.
		bob.Expect(story.IsStreamError("connection-timeout"))
		ping = alice.Expect(isPing...)
		alice.Send(story.IQResult(ping, nil))
		alice.IQ(story.Ping(story.RawAddr(srv.Domain())))
	})
}

// TestStoryDisabled: a disabled module leaves no handler and no feature.
func TestStoryDisabled(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.ping]\nenabled = false"))
	domain := story.RawAddr(srv.Domain())
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		info := alice.IQ(story.DiscoInfo(domain, ""))
		if strings.Contains(info.String(), NS) {
			t.Errorf("disabled module still advertised: %s", info)
		}
		story.AssertStanza(t, alice.IQ(story.Ping(domain)), story.IsStanzaError("cancel", "service-unavailable"))
	})
	if srv.Hooks().Owners()["ping"] {
		t.Error("disabled module has hooks")
	}
}

const NS = "urn:xmpp:ping"

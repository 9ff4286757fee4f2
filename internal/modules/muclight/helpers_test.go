package muclight_test

import (
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const quiet = 150 * time.Millisecond

func service(srv *servertest.Server) jid.JID { return jid.MustParse("muclight." + srv.Domain()) }

// roomOf names a room of the service after the test, so that parallel
// stories on one server never share a room.
func roomOf(t *testing.T, srv *servertest.Server, name string) jid.JID {
	return jid.MustParse(name + "-" + story.NewID() + "@muclight." + srv.Domain())
}

// create makes a room named room with owner as creator and the others as
// members, and takes every creation notification off the queues.
func create(t *testing.T, room jid.JID, owner *story.Client, members ...*story.Client) string {
	t.Helper()
	var occ []story.MUCLightUser
	for _, m := range members {
		occ = append(occ, story.Member(m))
	}
	res := owner.IQ(story.MUCLightCreate(room, []story.MUCLightField{{Name: "roomname", Value: "Room"}}, occ...))
	story.AssertStanza(t, res, story.IsIQ("result"))
	var version string
	for _, c := range append([]*story.Client{owner}, members...) {
		n := c.Expect(story.IsMUCLightNotice(room, story.NSMUCLightAffiliations))
		version = story.MUCLightNoticeOf(n, story.NSMUCLightAffiliations).Version
	}
	return version
}

// body returns the text of el's <body/>, "" when there is none.
func hasEmptyBody(el *xmlstream.Element) bool {
	b := el.Child("body", "jabber:client")
	return b != nil && b.Text() == ""
}

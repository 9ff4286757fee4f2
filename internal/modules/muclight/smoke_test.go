package muclight_test

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
)

func TestStoryMUCLightSmoke(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob)
		alice.Send(story.Groupchat(room, "hi"))
		bob.Expect(story.IsRoomMessage(room, alice, "hi"))
		alice.Expect(story.IsRoomMessage(room, alice, "hi"))
	})
}

package load_test

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/load"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
)

// The muc-light scenario against Meerkat's MUC Light module (on by
// default at muclight.<domain>): rooms are created, every groupchat
// message reaches every member, the sender included.
func TestLoadMUCLight(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	res := run(t, srv, load.Config{Scenario: "muc-light", Users: 20, RoomSize: 5, Rate: 4})
	delivered(t, res, 5)
	if res.Counters["iqs"] != 4 {
		t.Fatalf("%d rooms created, want 4", res.Counters["iqs"])
	}
}

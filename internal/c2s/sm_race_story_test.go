package c2s_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
)

// TestStorySMResumeAtTimeout: resumptions that arrive about when the
// resumption timeout ends each get an answer — <resumed/> or <failed/> —
// never silence or a dropped connection. (A resumption accepted just as
// the timer fired used to be handed to a session that no longer read: the
// client waited until the connection was collected.)
func TestStorySMResumeAtTimeout(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMResumeTimeout = config.Duration{Duration: 2 * time.Millisecond}
	})
	acct := smAccount(t, srv, "bob")
	opts := story.Options{Transport: story.DirectTLS, StreamManagement: true, Resume: true, NoPresence: true, Timeout: 10 * time.Second}
	bob, err := story.Connect(context.Background(), t, srv, acct, opts)
	if err != nil {
		t.Fatal(err)
	}
	resumed, failed := 0, 0
	for range 400 {
		bob.Cut()
		o := opts
		o.ResumeFrom = bob
		next, err := story.Connect(context.Background(), t, srv, acct, o)
		var re *story.ResumeError
		switch {
		case err == nil:
			resumed++
			bob = next
			continue
		case errors.As(err, &re):
			failed++
		default:
			t.Fatalf("after %d resumptions and %d failures: %v", resumed, failed, err)
		}
		if bob, err = story.Connect(context.Background(), t, srv, acct, opts); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d resumed, %d failed", resumed, failed)
}

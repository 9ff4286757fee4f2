package version_test

import (
	"runtime"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/modules/version"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
)

func TestStoryVersion(t *testing.T) {
	t.Parallel()
	for _, showOS := range []bool{false, true} {
		doc := "[modules.version]\nshow_os = false"
		if showOS {
			doc = "[modules.version]\nshow_os = true"
		}
		srv := servertest.Start(t, servertest.Modules(doc))
		story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
			q := alice.IQ(story.Version(story.RawAddr(srv.Domain()))).Child("query", version.NS)
			if q.ChildText("name", version.NS) != "Meerkat" || q.ChildText("version", version.NS) != version.Version {
				t.Errorf("answer %s", q)
			}
			// XEP-0092 §5: the OS only when configured.
			if os := q.ChildText("os", version.NS); (os != "") != showOS || showOS && os != runtime.GOOS+"/"+runtime.GOARCH {
				t.Errorf("show_os=%v: os %q", showOS, os)
			}
		})
	}
}

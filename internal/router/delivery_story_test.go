package router_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// TestStoryMessageDeliveryRules is RFC 6121 §8.5 Table 1 over real
// sockets, with offline storage disabled (O in the table is E then; the
// offline module has its own stories). Outcomes: D:<resources> delivered
// to them, E an error back to the sender, S silently ignored.
//
// Nothing here waits for something not to happen: after each message the
// sender pings the server and every recipient is sent a marker; routing is
// in order, so what did not arrive before the marker never will.
func TestStoryMessageDeliveryRules(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.offline]\nenabled = false"))
	types := []string{"normal", "chat", "groupchat", "headline", "error"}
	type res struct {
		name     string
		priority int // with available presence; -999: connected, no presence
	}
	conditions := []struct {
		name      string
		resources []res
		want      map[string][]string // address → outcome per type
	}{
		{"no active resources", nil, map[string][]string{
			"bare":          {"E", "E", "E", "S", "S"},
			"full no match": {"E", "E", "E", "E", "S"},
		}},
		{"connected but not available", []res{{"a", -999}}, map[string][]string{
			"bare":          {"E", "E", "E", "S", "S"},
			"full match":    {"D:a", "D:a", "D:a", "D:a", "D:a"},
			"full no match": {"E", "E", "E", "E", "S"},
		}},
		{"one negative resource", []res{{"a", -1}}, map[string][]string{
			"bare":          {"E", "E", "E", "S", "S"},
			"full match":    {"D:a", "D:a", "D:a", "D:a", "D:a"},
			"full no match": {"E", "E", "E", "E", "S"},
		}},
		{"one non-negative resource", []res{{"a", 0}}, map[string][]string{
			"bare":          {"D:a", "D:a", "E", "D:a", "S"},
			"full match":    {"D:a", "D:a", "D:a", "D:a", "D:a"},
			"full no match": {"E", "D:a", "E", "E", "S"},
		}},
		{"several resources", []res{{"a", 1}, {"b", 5}, {"c", 5}, {"n", -3}}, map[string][]string{
			"bare":          {"D:b,c", "D:b,c", "E", "D:a,b,c", "S"},
			"full match":    {"D:a", "D:a", "D:a", "D:a", "D:a"},
			"full no match": {"E", "D:b,c", "E", "E", "S"},
		}},
	}
	for _, c := range conditions {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checked := 0
			users := story.Users{"sender": 1}
			if len(c.resources) > 0 {
				users["user"] = len(c.resources)
			}
			// "user" sorts after "sender": the clients come as sender, user1, user2…
			fn := func(sender *story.Client, clients ...*story.Client) {
				byName := map[string]*story.Client{}
				for i, r := range c.resources {
					cl := clients[i]
					byName[r.name] = cl
					if r.priority == -999 {
						cl.Send(story.Presence("unavailable"))
						cl.Expect(story.IsPresence("unavailable", cl.JID()))
						continue
					}
					p := story.Presence("")
					p.AddChild(xmlstream.NewElement("priority", "jabber:client").AddText(fmt.Sprint(r.priority)))
					cl.Send(p)
					cl.Expect(story.IsPresence("", cl.JID()))
				}
				for _, cl := range clients {
					// Forget the presence of the other resources.
					for len(cl.Pending()) > 0 {
						cl.Collect(1)
					}
				}
				user := story.RawAddr("")
				if len(clients) > 0 {
					user = story.RawAddr(clients[0].Bare().String())
				} else {
					acct := story.NewAccount(t, srv, "user")
					user = story.RawAddr(acct.JID.String())
				}
				for addr, outcomes := range c.want {
					for i, typ := range types {
						to := string(user)
						switch addr {
						case "full match":
							to = byName["a"].JID().String()
						case "full no match":
							to += "/nosuchresource"
						}
						body := fmt.Sprintf("%s/%s", addr, typ)
						sender.Send(story.Message(typ, story.RawAddr(to), body))
						// The bounce, if any, comes before the ping's result.
						sender.IQ(story.Ping(nil))
						bounced := false
						for _, p := range sender.Pending() {
							if p.El.Attr("type") == "error" && p.El.ChildText("body", "jabber:client") == body {
								bounced = true
							}
						}
						for len(sender.Pending()) > 0 {
							sender.Collect(1)
						}
						var got []string
						for _, r := range c.resources {
							cl := byName[r.name]
							marker := story.Chat(cl.JID(), "marker")
							sender.Send(marker)
							for {
								el := cl.Collect(1)[0]
								if el.ChildText("body", "jabber:client") == "marker" {
									break
								}
								if el.ChildText("body", "jabber:client") == body {
									got = append(got, r.name)
								}
							}
						}
						var outcome string
						switch {
						case len(got) > 0:
							slices.Sort(got)
							outcome = "D:" + strings.Join(got, ",")
						case bounced:
							outcome = "E"
						default:
							outcome = "S"
						}
						checked++
						if outcome != outcomes[i] {
							t.Errorf("%s to %s: %s, want %s", typ, addr, outcome, outcomes[i])
						}
					}
				}
			}
			story.Run(t, srv, users, wrap(len(c.resources), fn))
			if want := len(c.want) * len(types); checked != want {
				t.Fatalf("checked %d cases, want %d", checked, want)
			}
		})
	}
}

// wrap adapts a variadic story function to the fixed signature story.Run
// checks: one *story.Client per resource.
func wrap(n int, fn func(*story.Client, ...*story.Client)) any {
	switch n {
	case 0:
		return func(s *story.Client) { fn(s) }
	case 1:
		return func(s, a *story.Client) { fn(s, a) }
	case 4:
		return func(s, a, b, c, d *story.Client) { fn(s, a, b, c, d) }
	}
	panic("wrap: unsupported number of resources")
}

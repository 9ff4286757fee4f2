package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
)

// muc-light: this process's users are split into rooms of RoomSize
// (MUC Light, ../shared/specs/muclight.md, as MongooseIM has it). In
// Setup the first member of each room creates it with an IQ set of
// urn:xmpp:muclight:0#create to room@MUCService listing the others as
// members (the IQ round trip goes to iq_rtt_us). At each send slot a
// member sends a stamped groupchat message to its room; the service
// sends it to every member, the sender included, so each message is
// expected RoomSize times. Affiliation notifications are not stamped
// and are ignored.
func init() {
	Register(Scenario{
		Name:  "muc-light",
		Doc:   "rooms of --room-size created with MUC Light (urn:xmpp:muclight:0#create); members send groupchat",
		Sends: true,
		New:   func(r *Run) Behaviour { return &mucLight{r: r} },
	})
}

// NSMUCLight is MUC Light's base namespace.
const NSMUCLight = "urn:xmpp:muclight:0"

type mucLight struct {
	Nop
	r *Run
}

// room returns the room of the user at position pos of this process's
// range (by RoomSize) and its members.
func (s *mucLight) room(pos int) (jid string, members []*User) {
	users := s.r.Users()
	n := s.r.Cfg.RoomSize
	first := pos / n * n
	members = users[first:min(first+n, len(users))]
	return fmt.Sprintf("load-%d-%d@%s", s.r.Cfg.From, first/n, s.r.Cfg.MUCService), members
}

func (s *mucLight) Setup(ctx context.Context) error {
	r := s.r
	users := r.Users()
	var wg sync.WaitGroup
	errs := make(chan error, len(users)/r.Cfg.RoomSize+1)
	sem := make(chan struct{}, 32)
	for pos := 0; pos < len(users); pos += r.Cfg.RoomSize {
		jid, members := s.room(pos)
		owner := members[0]
		c := owner.Conn()
		if c == nil {
			continue
		}
		var b strings.Builder
		id := c.NextID()
		b.WriteString("<iq xmlns='jabber:client' type='set' id='" + id + "' to='" + jid + "'><query xmlns='" + NSMUCLight + "#create'><configuration><roomname>" + jid + "</roomname></configuration><occupants>")
		for _, m := range members[1:] {
			b.WriteString("<user affiliation='member'>" + m.Bare + "</user>")
		}
		b.WriteString("</occupants></query></iq>")
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			start := time.Now()
			el, err := c.IQ(qctx, id, []byte(b.String()))
			if err == nil && el.Attr("type") != "result" {
				err = errors.New(xmppc.ErrorCondition(el))
			}
			if err != nil {
				errs <- fmt.Errorf("create %s: %w", jid, err)
				return
			}
			r.Rec.IQs.Add(1)
			r.Rec.Record(metrics.HistIQ, owner.Index, time.Since(start))
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // the first, or nil
}

func (s *mucLight) Act(_ context.Context, u *User) {
	jid, members := s.room(u.Index - s.r.Cfg.From)
	s.r.SendStamped(u, Message(jid, "groupchat", u.NextID(), s.r.Cfg.BodyBytes), len(members))
}

package load

import (
	"context"
	"errors"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
)

// mam: lookups while others send. A share of the users (MAMShare) query
// their own archive (XEP-0313, urn:xmpp:mam:2: the last 20 messages,
// newest page first with RSM <before/>) at each send slot; the others
// send chat messages as in one-to-one, so the archive grows while it is
// read. The IQ round trip (query to <fin/>'s result) goes to the
// iq_rtt_us histogram; the forwarded results are not stamped stanzas at
// top level, so they do not count as deliveries.
func init() {
	Register(Scenario{
		Name:  "mam",
		Doc:   "message archive (urn:xmpp:mam:2) lookups by a share of users while the others send",
		Sends: true,
		New:   func(r *Run) Behaviour { return &mam{r: r} },
	})
}

type mam struct {
	Nop
	r *Run
}

// NSMAM is message archive management (XEP-0313).
const NSMAM = "urn:xmpp:mam:2"

func (s *mam) querier(u *User) bool {
	every := max(int(1/s.r.Cfg.MAMShare), 1)
	return u.Index%every == 0
}

func (s *mam) Act(ctx context.Context, u *User) {
	r := s.r
	if !s.querier(u) {
		sendChat(r, u)
		return
	}
	c := u.Conn()
	if c == nil { // lost since the pacer looked
		return
	}
	id := c.NextID()
	q := []byte("<iq xmlns='jabber:client' type='set' id='" + id + "'><query xmlns='" + NSMAM + "' queryid='" + id +
		"'><set xmlns='http://jabber.org/protocol/rsm'><max>20</max><before/></set></query></iq>")
	r.Go(func() {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		start := time.Now()
		el, err := c.IQ(qctx, id, q)
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			r.Rec.Timeouts.Add(1)
		case err != nil:
			if ctx.Err() == nil {
				r.Fail("mam query", err)
			}
		case el.Attr("type") != "result":
			r.Fail("mam query", errors.New(xmppc.ErrorCondition(el)))
		default:
			r.Rec.IQs.Add(1)
			r.Rec.Record(metrics.HistIQ, u.Index, time.Since(start))
		}
	})
}

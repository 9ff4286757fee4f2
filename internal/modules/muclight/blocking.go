package muclight

// The per-user blocking list (muclight.md "Blocking").

import (
	"context"
	"fmt"
	"strconv"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// blockingGet: muclight.md "Blocking": "Get returns the deny items only".
func (m *MUCLight) blockingGet(ctx context.Context, req *request) (*xmlstream.Element, error) {
	if err := onlyChildren(req.Payload()); err != nil {
		return nil, err
	}
	list, err := m.store.MUCLightBlocking(ctx, req.sender, req.To.Domain())
	if err != nil {
		return nil, fmt.Errorf("muclight: blocking list of %s: %w", req.sender, err)
	}
	q := xmlstream.NewElement("query", NSBlocking)
	for _, b := range list {
		q.AddChild(xmlstream.NewElement(b.Kind, NSBlocking).SetAttr("action", "deny").AddText(b.JID.String()))
	}
	return q, nil
}

// blockingSet: <room action='deny|allow'> and <user action='deny|allow'>
// items, mixed freely; allowing what is not blocked is not an error.
func (m *MUCLight) blockingSet(ctx context.Context, req *request) (*xmlstream.Element, error) {
	p := req.Payload()
	var deny, allow []storage.MUCLightBlock
	for c := range p.Elements() {
		if c.NS != NSBlocking || c.Name != "room" && c.Name != "user" {
			return nil, errBadRequest("unexpected <" + c.Name + "/>")
		}
		j, err := jid.Parse(c.Text())
		if err != nil || !j.IsBare() || j.Local() == "" || c.Name == "room" && j.Domain() != req.To.Domain() {
			return nil, errBadRequest(strconv.Quote(c.Text()) + " is not a " + c.Name)
		}
		b := storage.MUCLightBlock{Kind: c.Name, JID: j}
		switch c.Attr("action") {
		case "deny":
			deny = append(deny, b)
		case "allow":
			allow = append(allow, b)
		default:
			return nil, errBadRequest("action must be deny or allow")
		}
	}
	if len(deny)+len(allow) == 0 {
		return nil, errBadRequest("no item")
	}
	if err := m.store.SetMUCLightBlocking(ctx, req.sender, req.To.Domain(), deny, allow); err != nil {
		return nil, fmt.Errorf("muclight: blocking list of %s: %w", req.sender, err)
	}
	return nil, nil
}

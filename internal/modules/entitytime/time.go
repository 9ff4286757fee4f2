// Package entitytime implements Entity Time (XEP-0202) for the served
// domains: the server's UTC time and its offset, in XEP-0082 formats.
package entitytime

import (
	"context"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NS is the namespace of XEP-0202.
const NS = "urn:xmpp:time"

func init() {
	module.Register(module.Factory{
		Name:             "time",
		Doc:              "Entity Time (XEP-0202).",
		EnabledByDefault: true,
		New:              func(any) (module.Module, error) { return &Module{now: time.Now}, nil },
	})
}

// Module is the module.
type Module struct{ now func() time.Time }

var _ module.Module = (*Module)(nil)

// Start implements module.Module.
func (m *Module) Start(_ context.Context, env *module.Env) error {
	env.Hooks.ServerFeatures.Add(env.Owner, 0, NS)
	return env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetHost, NS, m.answer)
}

// Stop implements module.Module.
func (m *Module) Stop() error { return nil }

// answer builds <time><tzo/><utc/></time> (XEP-0202 §3).
func (m *Module) answer(context.Context, *module.IQ) (*xmlstream.Element, error) {
	now := m.now()
	return Element(now), nil
}

// Element renders t as a XEP-0202 <time/> element.
func Element(t time.Time) *xmlstream.Element {
	// XEP-0082: tzo is ±hh:mm, utc is a UTC DateTime with a Z.
	tzo := t.Format("-07:00")
	return xmlstream.NewElement("time", NS).
		AddChild(xmlstream.NewElement("tzo", NS).AddText(tzo)).
		AddChild(xmlstream.NewElement("utc", NS).AddText(stanza.FormatTime(t)))
}

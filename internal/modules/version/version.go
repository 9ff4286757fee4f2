// Package version implements Software Version (XEP-0092) for the served
// domains.
package version

import (
	"context"
	"runtime"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NS is the namespace of XEP-0092.
const NS = "jabber:iq:version"

// Version is the server's version, set at build time with
// -ldflags "-X github.com/meerkat-xmpp/meerkat/internal/modules/version.Version=…".
var Version = "0.1.0-dev"

// Config configures the module.
type Config struct {
	ShowOS bool `toml:"show_os" comment:"Tell the operating system (XEP-0092 §5 advises against it)."`
}

func init() {
	module.Register(module.Factory{
		Name:             "version",
		Doc:              "Software Version (XEP-0092).",
		EnabledByDefault: true,
		Config:           func() any { return &Config{} },
		New:              func(cfg any) (module.Module, error) { return &Module{cfg: *cfg.(*Config)}, nil },
	})
}

// Module is the module.
type Module struct{ cfg Config }

var _ module.Module = (*Module)(nil)

// Start implements module.Module.
func (m *Module) Start(_ context.Context, env *module.Env) error {
	env.Hooks.ServerFeatures.Add(env.Owner, 0, NS)
	return env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetHost, NS, m.answer)
}

// Stop implements module.Module.
func (m *Module) Stop() error { return nil }

// answer returns name, version and optionally os (XEP-0092 §3).
func (m *Module) answer(context.Context, *module.IQ) (*xmlstream.Element, error) {
	q := xmlstream.NewElement("query", NS).
		AddChild(xmlstream.NewElement("name", NS).AddText("Meerkat")).
		AddChild(xmlstream.NewElement("version", NS).AddText(Version))
	if m.cfg.ShowOS {
		q.AddChild(xmlstream.NewElement("os", NS).AddText(runtime.GOOS + "/" + runtime.GOARCH))
	}
	return q, nil
}

// Package disco implements service discovery (XEP-0030) for the served
// domains and for accounts: disco#info built from the identities and
// features the running modules registered, disco#items from the services
// they registered.
package disco

import (
	"context"
	"slices"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces of XEP-0030.
const (
	NSInfo  = stanza.NSDiscoInfo
	NSItems = stanza.NSDiscoItems
)

// Config configures the module.
type Config struct {
	Name string `toml:"name" comment:"Name of the server identity (category server, type im)."`
}

func init() {
	module.Register(module.Factory{
		Name:             "disco",
		Doc:              "Service discovery (XEP-0030).",
		EnabledByDefault: true,
		Config:           func() any { return &Config{Name: "Meerkat"} },
		New:              func(cfg any) (module.Module, error) { return &Disco{cfg: *cfg.(*Config)}, nil },
	})
}

// Disco is the module.
type Disco struct {
	cfg   Config
	hooks *module.Hooks
}

var _ module.Module = (*Disco)(nil)

// Start implements module.Module.
func (d *Disco) Start(_ context.Context, env *module.Env) error {
	d.hooks = env.Hooks
	h := env.Hooks
	h.ServerIdentities.Add(env.Owner, 0, module.Identity{Category: "server", Type: "im", Name: d.cfg.Name})
	h.ServerFeatures.Add(env.Owner, 0, NSInfo)
	h.ServerFeatures.Add(env.Owner, 0, NSItems)
	h.AccountFeatures.Add(env.Owner, 0, NSInfo)
	h.AccountFeatures.Add(env.Owner, 0, NSItems)
	for _, err := range []error{
		h.HandleIQ(env.Owner, stanza.IQGet, module.TargetHost, NSInfo, d.serverInfo),
		h.HandleIQ(env.Owner, stanza.IQGet, module.TargetHost, NSItems, d.serverItems),
		h.HandleIQ(env.Owner, stanza.IQGet, module.TargetSelf, NSInfo, d.accountInfo),
		h.HandleIQ(env.Owner, stanza.IQGet, module.TargetSelf, NSItems, d.accountItems),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Stop implements module.Module.
func (d *Disco) Stop() error { return nil }

// nodeOf reads the node of a request; only the empty node is known here
// (XEP-0030 §3.2: an unknown node gets item-not-found).
func nodeOf(iq *module.IQ) error {
	if iq.Payload().Attr("node") != "" {
		return stanza.NewError(stanza.ItemNotFound, "")
	}
	return nil
}

func (d *Disco) serverInfo(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if err := nodeOf(iq); err != nil {
		return nil, err
	}
	q := xmlstream.NewElement("query", NSInfo)
	for _, h := range d.hooks.ServerIdentities.Hooks() {
		id := xmlstream.NewElement("identity", NSInfo).SetAttr("category", h.Fn.Category).SetAttr("type", h.Fn.Type)
		if h.Fn.Name != "" {
			id.SetAttr("name", h.Fn.Name)
		}
		q.AddChild(id)
	}
	addFeatures(q, d.hooks.ServerFeatures.Hooks())
	return q, nil
}

func (d *Disco) serverItems(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if err := nodeOf(iq); err != nil {
		return nil, err
	}
	q := xmlstream.NewElement("query", NSItems)
	for _, h := range d.hooks.ServerItems.Hooks() {
		it := xmlstream.NewElement("item", NSItems).SetAttr("jid", h.Fn.JID)
		if h.Fn.Name != "" {
			it.SetAttr("name", h.Fn.Name)
		}
		if h.Fn.Node != "" {
			it.SetAttr("node", h.Fn.Node)
		}
		q.AddChild(it)
	}
	return q, nil
}

// accountInfo answers for the account's own bare JID (XEP-0030 §3.1,
// RFC 6121 §8.5.2.1.3). Other users' bare JIDs are answered once rosters
// exist to tell who may ask.
func (d *Disco) accountInfo(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if err := nodeOf(iq); err != nil {
		return nil, err
	}
	q := xmlstream.NewElement("query", NSInfo)
	q.AddChild(xmlstream.NewElement("identity", NSInfo).SetAttr("category", "account").SetAttr("type", "registered"))
	addFeatures(q, d.hooks.AccountFeatures.Hooks())
	return q, nil
}

func (d *Disco) accountItems(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if err := nodeOf(iq); err != nil {
		return nil, err
	}
	return xmlstream.NewElement("query", NSItems), nil
}

// addFeatures adds the features sorted and without duplicates.
func addFeatures(q *xmlstream.Element, hooks []module.Hook[string]) {
	vars := make([]string, 0, len(hooks))
	for _, h := range hooks {
		vars = append(vars, h.Fn)
	}
	slices.Sort(vars)
	for _, v := range slices.Compact(vars) {
		q.AddChild(xmlstream.NewElement("feature", NSInfo).SetAttr("var", v))
	}
}

// Package private implements private XML storage (XEP-0049): a user
// stores XML fragments on the server, each under its namespace and
// element name, that only the user can read back (bookmarks, XEP-0048,
// and client preferences, for instance).
package private

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NS is the namespace of XEP-0049.
const NS = "jabber:iq:private"

// Config configures the module.
type Config struct {
	MaxBytes int64 `toml:"max_bytes" comment:"Private XML one account may store in total, serialized, in bytes (0: no limit)."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	if c.MaxBytes < 0 {
		return []error{errors.New("max_bytes: must not be negative")}
	}
	return nil
}

func init() {
	module.Register(module.Factory{
		Name:             "private",
		Doc:              "Private XML storage (XEP-0049).",
		EnabledByDefault: true,
		Config:           func() any { return &Config{MaxBytes: 256 << 10} },
		New:              func(cfg any) (module.Module, error) { return &Private{cfg: *cfg.(*Config)}, nil },
	})
}

// Store is the storage the module uses (storage.ProfileStore implements it).
type Store interface {
	PrivateXML(ctx context.Context, user jid.JID, ns, name string) (string, error)
	PutPrivateXML(ctx context.Context, user jid.JID, items []storage.PrivateItem, quota int64) error
}

// Private is the module.
type Private struct {
	cfg   Config
	store Store
}

var _ module.Module = (*Private)(nil)

// Start implements module.Module.
func (p *Private) Start(_ context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("private: the storage backend %T does not store private XML", env.Store)
	}
	p.store = st
	return errors.Join(
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetSelf, NS, p.get),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetSelf, NS, p.set),
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetBare, NS, other),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetBare, NS, other),
	)
}

// Stop implements module.Module.
func (p *Private) Stop() error { return nil }

// other refuses access to another user's data (§2.3: forbidden, which
// the XEP prefers to service-unavailable).
func other(context.Context, *module.IQ) (*xmlstream.Element, error) {
	return nil, stanza.NewError(stanza.Forbidden, "private XML belongs to its user only")
}

// reserved reports the namespaces of §2.3 that may not be stored: those
// of the protocol itself. The error is optional in the XEP; it keeps
// clients from storing what belongs elsewhere (vCards, rosters).
func reserved(ns string) bool {
	return strings.HasPrefix(ns, "jabber:") || strings.HasPrefix(ns, "http://jabber.org/") || ns == "vcard-temp"
}

// elements checks the <query/> of a request and returns its children:
// at least one (§2.3: not-acceptable otherwise), none in a reserved
// namespace (§2.3, §3: not-acceptable).
func elements(iq *module.IQ) ([]*xmlstream.Element, error) {
	q := iq.Payload()
	if q.Name != "query" {
		return nil, stanza.NewError(stanza.BadRequest, "the payload of jabber:iq:private is <query/>")
	}
	var els []*xmlstream.Element
	for el := range q.Elements() {
		if reserved(el.NS) {
			return nil, stanza.NewError(stanza.NotAcceptable, "namespace "+el.NS+" is reserved")
		}
		els = append(els, el)
	}
	if len(els) == 0 {
		return nil, stanza.NewError(stanza.NotAcceptable, "the query must contain an element in its own namespace")
	}
	return els, nil
}

// get returns the stored elements asked for, or the element as asked
// (empty) when nothing is stored (§2.3).
func (p *Private) get(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	els, err := elements(iq)
	if err != nil {
		return nil, err
	}
	for _, el := range els[1:] {
		if el.NS != els[0].NS {
			// §2.3: one namespace per get.
			return nil, stanza.NewError(stanza.BadRequest, "one namespace per request")
		}
	}
	user := iq.From.Bare()
	res := xmlstream.NewElement("query", NS)
	for _, el := range els {
		raw, err := p.store.PrivateXML(ctx, user, el.NS, el.Name)
		if errors.Is(err, storage.ErrNotFound) {
			res.AddChild(xmlstream.NewElement(el.Name, el.NS))
			continue
		}
		if err != nil {
			return nil, err
		}
		stored, err := xmlstream.Parse([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("private: stored %s %s of %s: %w", el.NS, el.Name, user, err)
		}
		res.AddChild(stored)
	}
	return res, nil
}

// set stores every element of the query, in one transaction (§2.3); an
// empty element removes what was stored under its name, which reads back
// the same (get answers an empty element).
func (p *Private) set(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	els, err := elements(iq)
	if err != nil {
		return nil, err
	}
	items := make([]storage.PrivateItem, 0, len(els))
	seen := make(map[[2]string]bool, len(els))
	for _, el := range els {
		key := [2]string{el.NS, el.Name}
		if seen[key] {
			return nil, stanza.NewError(stanza.BadRequest, "<"+el.Name+" xmlns='"+el.NS+"'/> appears twice")
		}
		seen[key] = true
		it := storage.PrivateItem{NS: el.NS, Name: el.Name}
		if !isEmpty(el) {
			it.XML = el.String()
		}
		items = append(items, it)
	}
	err = p.store.PutPrivateXML(ctx, iq.From.Bare(), items, p.cfg.MaxBytes)
	if errors.Is(err, storage.ErrQuota) {
		// RFC 6120 §8.3.3.12: a local policy, stated in the text.
		return nil, stanza.NewError(stanza.PolicyViolation,
			fmt.Sprintf("private XML storage is limited to %d bytes per account", p.cfg.MaxBytes))
	}
	if err != nil {
		return nil, err
	}
	return nil, nil
}

// isEmpty reports whether el has no attributes, no child elements and
// only white space.
func isEmpty(el *xmlstream.Element) bool {
	if len(el.Attrs) > 0 {
		return false
	}
	for _, c := range el.Children {
		if c.Elem != nil || strings.TrimSpace(c.Text) != "" {
			return false
		}
	}
	return true
}

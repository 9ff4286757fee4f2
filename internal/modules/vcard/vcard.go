// Package vcard implements vcard-temp (XEP-0054): a user stores a vCard
// on the server and anybody may read it at the user's bare JID.
//
// The vCard is kept as the client sent it, serialized, and returned as it
// was set.
package vcard

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

// NS is the namespace of XEP-0054.
const NS = "vcard-temp"

// Config configures the module.
type Config struct {
	MaxBytes int `toml:"max_bytes" comment:"Largest vCard accepted, serialized, in bytes (avatars embedded in vCards count)."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	if c.MaxBytes <= 0 {
		return []error{errors.New("max_bytes: must be positive")}
	}
	return nil
}

func init() {
	module.Register(module.Factory{
		Name:             "vcard",
		Doc:              "vCards (vcard-temp, XEP-0054).",
		EnabledByDefault: true,
		Config:           func() any { return &Config{MaxBytes: 32 << 10} },
		New:              func(cfg any) (module.Module, error) { return &VCard{cfg: *cfg.(*Config)}, nil },
	})
}

// Store is the storage the module uses (storage.ProfileStore implements it).
type Store interface {
	VCard(ctx context.Context, user jid.JID) (string, error)
	SetVCard(ctx context.Context, user jid.JID, vcard string) error
}

// VCard is the module.
type VCard struct {
	cfg   Config
	store Store
}

var _ module.Module = (*VCard)(nil)

// Start implements module.Module.
func (v *VCard) Start(_ context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("vcard: the storage backend %T does not store vCards", env.Store)
	}
	v.store = st
	// §4: the server supports vcard-temp for its accounts.
	env.Hooks.ServerFeatures.Add(env.Owner, 0, NS)
	env.Hooks.AccountFeatures.Add(env.Owner, 0, NS)
	return errors.Join(
		// The get handler for TargetBare serves TargetSelf too.
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetBare, NS, v.get),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetSelf, NS, v.set),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetBare, NS, setOther),
	)
}

// Stop implements module.Module.
func (v *VCard) Stop() error { return nil }

func checkPayload(iq *module.IQ) error {
	if p := iq.Payload(); p.Name != "vCard" {
		return stanza.NewError(stanza.BadRequest, "the payload of vcard-temp is <vCard/>")
	}
	return nil
}

// get answers for the user's own vCard (§3.1) or another user's (§3.3).
func (v *VCard) get(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if err := checkPayload(iq); err != nil {
		return nil, err
	}
	user := iq.To
	if iq.Target == module.TargetSelf {
		user = iq.From.Bare()
	}
	raw, err := v.store.VCard(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		if iq.Target == module.TargetSelf {
			// §3.1: an error, which SHOULD be item-not-found, or an
			// empty vCard; the error tells the client there is none.
			return nil, stanza.NewError(stanza.ItemNotFound, "")
		}
		// §3.3: the same error as for a missing account (the router
		// answers those), against directory harvesting.
		return nil, stanza.NewError(stanza.ServiceUnavailable, "")
	}
	if err != nil {
		return nil, err
	}
	el, err := xmlstream.Parse([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("vcard: stored vCard of %s: %w", user, err)
	}
	return el, nil
}

// set replaces the user's own vCard (§3.2). An empty <vCard/> removes it:
// §3.1 treats "no vCard" and an empty one alike.
func (v *VCard) set(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if err := checkPayload(iq); err != nil {
		return nil, err
	}
	p := iq.Payload()
	raw := ""
	if !isEmpty(p) {
		raw = p.String()
		if len(raw) > v.cfg.MaxBytes {
			// RFC 6120 §8.3.3.12: a local policy, stated in the text.
			return nil, stanza.NewError(stanza.PolicyViolation,
				fmt.Sprintf("the vCard is %d bytes, more than the %d bytes allowed", len(raw), v.cfg.MaxBytes))
		}
	}
	if err := v.store.SetVCard(ctx, iq.From.Bare(), raw); err != nil {
		return nil, err
	}
	return nil, nil
}

// setOther refuses to change another user's vCard (§3.2).
func setOther(context.Context, *module.IQ) (*xmlstream.Element, error) {
	return nil, stanza.NewError(stanza.Forbidden, "only the user may change their vCard")
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

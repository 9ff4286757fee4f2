package mam

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// maxPrefsJIDs bounds the always and never lists together.
const maxPrefsJIDs = 1000

// prefsCache keeps the preferences of the users the message path has seen,
// so that deciding whether to archive costs no read per message. Entries
// are replaced when a user sets preferences and dropped when the account
// goes; a cluster node that did not serve the set reads the new
// preferences at its next start (preferences change rarely).
type prefsCache struct {
	mu    sync.RWMutex
	users map[jid.JID]*storage.ArchivePrefs // nil: the user has none stored
}

func (c *prefsCache) init() { c.users = map[jid.JID]*storage.ArchivePrefs{} }

func (c *prefsCache) forget(user jid.JID) {
	c.mu.Lock()
	delete(c.users, user)
	c.mu.Unlock()
}

func (c *prefsCache) set(user jid.JID, p *storage.ArchivePrefs) {
	c.mu.Lock()
	// A bounded cache: dropping everything now and then costs one read
	// per active user.
	if len(c.users) >= 100_000 {
		clear(c.users)
	}
	c.users[user] = p
	c.mu.Unlock()
}

// prefsOf returns a user's stored preferences, nil when there are none.
func (m *MAM) prefsOf(ctx context.Context, user jid.JID) (*storage.ArchivePrefs, error) {
	m.prefs.mu.RLock()
	p, ok := m.prefs.users[user]
	m.prefs.mu.RUnlock()
	if ok {
		return p, nil
	}
	stored, found, err := m.store.ArchivePrefs(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("mam: preferences of %s: %w", user, err)
	}
	if found {
		p = &stored
	}
	m.prefs.set(user, p)
	return p, nil
}

// shouldArchive applies owner's preferences (XEP-0441 §2) to a message
// exchanged with peer: a JID in 'never' wins over one in 'always', which
// wins over the default. A listed bare JID matches all its resources, a
// listed domain all its users.
func (m *MAM) shouldArchive(ctx context.Context, owner, peer jid.JID) bool {
	p, err := m.prefsOf(ctx, owner)
	if err != nil {
		// Keep rather than lose: archive under the server default.
		m.log.Error("archiving with the server default", "error", err)
	}
	mode := m.cfg.Default
	if p != nil {
		if matchesAny(p.Never, peer) {
			return false
		}
		if matchesAny(p.Always, peer) {
			return true
		}
		mode = p.Default
	}
	switch mode {
	case Always:
		return true
	case Roster:
		item, err := m.store.RosterItem(ctx, owner, peer.Bare())
		return err == nil && !item.Hidden
	}
	return false
}

func matchesAny(list []jid.JID, peer jid.JID) bool {
	for _, j := range list {
		switch {
		case j == peer, j == peer.Bare():
		case j.Local() == "" && j.Resource() == "" && j.Domain() == peer.Domain():
		default:
			continue
		}
		return true
	}
	return false
}

// handlePrefs answers a preferences get or set (XEP-0441 §2.1, §2.2).
func (m *MAM) handlePrefs(ctx context.Context, iq *module.IQ, ns string) (*xmlstream.Element, error) {
	user := iq.From.Bare()
	if iq.Type == stanza.IQGet {
		p, err := m.prefsOf(ctx, user)
		if err != nil {
			return nil, err
		}
		if p == nil {
			p = &storage.ArchivePrefs{Default: m.cfg.Default}
		}
		return prefsElement(ns, *p), nil
	}
	p, err := parsePrefs(iq.Payload())
	if err != nil {
		return nil, stanza.NewError(stanza.BadRequest, err.Error())
	}
	if err := m.store.SetArchivePrefs(ctx, user, p); err != nil {
		return nil, fmt.Errorf("mam: storing preferences of %s: %w", user, err)
	}
	m.prefs.set(user, &p)
	// §2.2: the result carries the preferences now in force.
	return prefsElement(ns, p), nil
}

func parsePrefs(el *xmlstream.Element) (storage.ArchivePrefs, error) {
	p := storage.ArchivePrefs{Default: el.Attr("default")}
	if p.Default != Always && p.Default != Never && p.Default != Roster {
		return p, fmt.Errorf("default %q is none of always, never, roster", p.Default)
	}
	read := func(name string) ([]jid.JID, error) {
		var list []jid.JID
		c := el.Child(name, el.NS)
		if c == nil {
			return nil, nil
		}
		for j := range c.ChildrenNamed("jid", el.NS) {
			parsed, err := jid.Parse(j.Text())
			if err != nil {
				return nil, fmt.Errorf("<%s/>: %w", name, err)
			}
			list = append(list, parsed)
		}
		return list, nil
	}
	var err1, err2 error
	p.Always, err1 = read("always")
	p.Never, err2 = read("never")
	if err := errors.Join(err1, err2); err != nil {
		return p, err
	}
	if len(p.Always)+len(p.Never) > maxPrefsJIDs {
		return p, fmt.Errorf("more than %d JIDs", maxPrefsJIDs)
	}
	return p, nil
}

func prefsElement(ns string, p storage.ArchivePrefs) *xmlstream.Element {
	el := xmlstream.NewElement("prefs", ns).SetAttr("default", p.Default)
	for _, list := range []struct {
		name string
		jids []jid.JID
	}{{"always", p.Always}, {"never", p.Never}} {
		c := xmlstream.NewElement(list.name, ns)
		for _, j := range list.jids {
			c.AddChild(xmlstream.NewElement("jid", ns).AddText(j.String()))
		}
		el.AddChild(c)
	}
	return el
}

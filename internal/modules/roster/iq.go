package roster

import (
	"context"
	"strconv"
	"unicode/utf8"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// get answers a roster get (RFC 6121 §2.1.3, §2.2) and makes the session
// an interested resource. With a 'ver' the server knows (§2.6.3) the
// answer is an empty result followed by one push per item changed since
// (the "interim roster pushes"); otherwise it is the whole roster with its
// version. The answer is sent under the user's lock, before any push of a
// later change.
//
// When RosterItem hooks are attached, what they add to the items is part
// of the version ("counter.fingerprint", see formatVersion): a versioned
// get then reads the whole roster to compute the fingerprint, and a
// client whose fingerprint differs (or has none) gets the whole roster,
// since the server cannot tell which items' additions changed.
func (r *Roster) get(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	q := iq.Payload()
	if q.Child("item", NS) != nil {
		// §2.1.3: a roster get MUST NOT contain items.
		return nil, stanza.NewError(stanza.BadRequest, "a roster get has no items")
	}
	s := iq.Session
	if s == nil {
		return nil, stanza.NewError(stanza.Forbidden, "")
	}
	user := iq.From.Bare()
	mu := r.lock(user)
	defer mu.Unlock()
	s.SetValue(interestedKey{}, true)
	var (
		items   []storage.RosterItem
		version int64
		loaded  bool
		els     []*xmlstream.Element
		fp      fingerprint
	)
	load := func() error {
		var err error
		if items, version, err = r.store.Roster(ctx, user); err != nil {
			return err
		}
		loaded = true
		els = make([]*xmlstream.Element, len(items))
		for i, it := range items {
			var extra string
			els[i], extra = r.render(ctx, user, it)
			fp.add(it.Contact, extra)
		}
		return nil
	}
	if ver := q.Attr("ver"); ver != "" {
		if since, clientFP, ok := parseVersion(ver); ok {
			if r.hooks.RosterItem.Len() > 0 {
				if err := load(); err != nil {
					return nil, err
				}
				ok = clientFP == fp.String()
			} else {
				ok = clientFP == ""
			}
			var changes []storage.RosterChange
			if ok {
				var err error
				if changes, _, ok, err = r.store.RosterChanges(ctx, user, since); err != nil {
					return nil, err
				}
			}
			size := -1 // unknown unless the roster was read
			if loaded {
				size = len(items)
			}
			if ok && r.pushesAreSmaller(ctx, user, len(changes), size) {
				s.Deliver(iq.Result(nil))
				suffix := fp.String()
				// The roster read for the fingerprint has the changed
				// items rendered already, hooks included: push those.
				var rendered map[jid.JID]*xmlstream.Element
				if loaded && len(changes) > 0 {
					rendered = make(map[jid.JID]*xmlstream.Element, len(items))
					for i, it := range items {
						rendered[it.Contact] = els[i]
					}
				}
				for _, c := range changes {
					if c.Removed {
						r.pushVer(s, removedElement(c.Item.Contact), formatVersion(c.Item.Version, suffix))
						continue
					}
					el := rendered[c.Item.Contact]
					if el == nil {
						el, _ = r.render(ctx, user, c.Item)
					}
					r.pushVer(s, el, formatVersion(c.Item.Version, suffix))
				}
				return nil, module.ErrReplied
			}
		}
	}
	if !loaded {
		if err := load(); err != nil {
			return nil, err
		}
	}
	res := xmlstream.NewElement("query", NS).SetAttr("ver", formatVersion(version, fp.String()))
	for _, el := range els {
		res.AddChild(el)
	}
	s.Deliver(iq.Result(res))
	return nil, module.ErrReplied
}

// pushesAreSmaller applies §2.6.3: interim pushes unless
// the whole roster is smaller than the changes. size is the number of
// items of the roster when the caller read it, -1 when it did not: then
// it is counted in storage.
func (r *Roster) pushesAreSmaller(ctx context.Context, user jid.JID, changes, size int) bool {
	if changes <= 1 {
		return true
	}
	if size >= 0 {
		return changes <= size
	}
	n, err := r.store.RosterSize(ctx, user)
	return err != nil || changes <= n
}

// set handles a roster set (RFC 6121 §2.1.5): add or update an item
// (§2.3, §2.4), or remove it with subscription='remove' (§2.5). The
// errors are those of §2.3.3 and §2.5.3.
func (r *Roster) set(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	q := iq.Payload()
	var item *xmlstream.Element
	n := 0
	for it := range q.ChildrenNamed("item", NS) {
		item = it
		n++
	}
	if n != 1 {
		// §2.1.5 rule 1, §2.3.3.
		return nil, stanza.NewError(stanza.BadRequest, "a roster set holds exactly one item")
	}
	raw := item.Attr("jid")
	if raw == "" {
		// §2.1.2.3: the jid attribute is required.
		return nil, stanza.NewError(stanza.BadRequest, "the item has no jid")
	}
	contact, err := jid.Parse(raw)
	if err != nil {
		// RFC 6120 §8.3.3.8.
		return nil, stanza.NewError(stanza.JIDMalformed, "")
	}
	if !contact.IsBare() {
		return nil, stanza.NewError(stanza.BadRequest, "roster items are bare JIDs")
	}
	user := iq.From.Bare()
	if contact == user {
		// §2.3.3, interoperability note: the user is not a contact of itself.
		return nil, stanza.NewError(stanza.NotAllowed, "the account itself cannot be a roster item")
	}
	// §2.1.5 rule 2: any subscription value but "remove" is ignored (so
	// are 'ask' and 'approved', which a client MUST NOT send, §2.1.2).
	if item.Attr("subscription") == "remove" {
		return r.remove(ctx, iq, user, contact)
	}
	name := item.Attr("name")
	if utf8.RuneCountInString(name) > r.cfg.MaxNameLength {
		return nil, stanza.NewError(stanza.NotAcceptable, "the name is longer than "+strconv.Itoa(r.cfg.MaxNameLength)+" characters")
	}
	var groups []string
	seen := map[string]bool{}
	for g := range item.ChildrenNamed("group", NS) {
		text := g.Text()
		switch {
		case text == "":
			return nil, stanza.NewError(stanza.NotAcceptable, "empty group name")
		case utf8.RuneCountInString(text) > r.cfg.MaxGroupLength:
			return nil, stanza.NewError(stanza.NotAcceptable, "a group name is longer than "+strconv.Itoa(r.cfg.MaxGroupLength)+" characters")
		case seen[text]:
			return nil, stanza.NewError(stanza.BadRequest, "duplicate group "+strconv.Quote(text))
		}
		seen[text] = true
		groups = append(groups, text)
	}
	if r.cfg.MaxGroups > 0 && len(groups) > r.cfg.MaxGroups {
		return nil, stanza.NewError(stanza.NotAcceptable, "more than "+strconv.Itoa(r.cfg.MaxGroups)+" groups")
	}

	mu := r.lock(user)
	defer mu.Unlock()
	old, err := r.entry(ctx, user, contact)
	if err != nil {
		return nil, err
	}
	it := storage.RosterItem{Contact: contact, Subscription: storage.SubNone}
	if old != nil {
		it = *old
	} else if full, err := r.full(ctx, user); err != nil {
		return nil, err
	} else if full {
		return nil, r.errFull()
	}
	// §2.4.1: the item is updated exactly as given; a hidden entry (a
	// pending request) becomes an item with the request still pending.
	it.Name, it.Groups, it.Hidden = name, groups, false
	v, changed, err := r.store.PutRosterItem(ctx, user, it)
	if err != nil {
		return nil, err
	}
	if changed {
		r.pushItem(ctx, user, it, v, iq.Session)
	}
	return nil, nil
}

// remove deletes an item (RFC 6121 §2.5): a push with
// subscription='remove', then the subscription stanzas that end what the
// item held. §2.5.2 asks for unsubscribe when the user is subscribed to
// the contact and unsubscribed when the contact is subscribed to the
// user; pending requests are withdrawn (unsubscribe) and denied
// (unsubscribed) the same way, so that the contact's roster does not keep
// an 'ask' that nobody will answer. Before unsubscribed, a subscribed
// contact gets unavailable presence (§3.2.2).
func (r *Roster) remove(ctx context.Context, iq *module.IQ, user, contact jid.JID) (*xmlstream.Element, error) {
	mu := r.lock(user)
	old, err := r.entry(ctx, user, contact)
	if err == nil && (old == nil || old.Hidden) {
		mu.Unlock()
		// §2.5.3 (its example has type modify).
		return nil, &stanza.Error{Type: stanza.ErrorModify, Condition: stanza.ItemNotFound}
	}
	var v int64
	if err == nil {
		v, err = r.store.DeleteRosterItem(ctx, user, contact)
	}
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	r.push(user, removedElement(contact), v, iq.Session)
	mu.Unlock()

	s := stateOf(old)
	if s.Sub.HasFrom() {
		r.sendUnavailable(ctx, user, contact)
	}
	if s.Sub.HasTo() || s.PendingOut {
		r.send(ctx, subscriptionPresence(stanza.PresenceUnsubscribe, user, contact, ""))
	}
	if s.Sub.HasFrom() || s.PendingIn {
		r.send(ctx, subscriptionPresence(stanza.PresenceUnsubscribed, user, contact, ""))
	}
	return nil, nil
}

package roster

import (
	"context"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// subscriptionPresence builds a subscription stanza between bare JIDs
// (RFC 6121 §3: they are stamped with the bare JID of the sender).
func subscriptionPresence(typ string, from, to jid.JID, id string) *xmlstream.Element {
	p := stanza.NewPresence(typ, to.Bare(), from.Bare())
	if id != "" {
		p.SetAttr("id", id)
	}
	return p
}

// outboundHook runs for every stanza a local client sends: subscription
// stanzas are processed here (Appendix A.2) and routed by the module.
func (r *Roster) outboundHook(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind != stanza.KindPresence || !isSubscription(st.Type) || st.To.IsZero() {
		return module.Continue
	}
	user, contact := ev.User, st.To.Bare()
	if contact == user {
		// The user is implicitly subscribed to itself (§4.2.2).
		return module.Stop
	}
	if err := r.outbound(ctx, user, contact, st); err != nil {
		r.log.Error("outbound subscription", "user", user.String(), "contact", contact.String(), "type", st.Type, "error", err)
		r.bounce(ctx, st, stanza.NewError(stanza.InternalServerError, ""))
	}
	return module.Stop
}

// outbound is the user's server processing a subscription stanza from the
// user (§3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4.2): update the user's entry
// and push it, then route the stanza stamped with the bare JIDs (a full
// JID 'to' is treated as the bare one, §3.1.2 rule 1), preceded by
// unavailable presence when the contact loses its subscription and
// followed by the user's presence when it gains one.
//
// The push goes out before the stanza is routed (the RFC lists the push
// after): for a local contact, routing processes the stanza at once on
// the contact's side, whose answer (a pre-approved request is approved at
// once) must find the new state and push after it.
func (r *Roster) outbound(ctx context.Context, user, contact jid.JID, st *stanza.Stanza) error {
	if st.Type == stanza.PresenceSubscribe && contact.Local() != "" && r.host.IsLocal(contact.Domain()) {
		// §3.1.2: a request that cannot be delivered gets an error.
		ok, err := r.store.AccountExists(ctx, contact)
		if err != nil {
			return err
		}
		if !ok {
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, "no such user"))
			return nil
		}
	}
	mu := r.lock(user)
	old, err := r.entry(ctx, user, contact)
	if err != nil {
		mu.Unlock()
		return err
	}
	p := planOutbound(contact, old, st.Type)
	if old == nil && p.keep {
		if full, err := r.full(ctx, user); err != nil || full {
			mu.Unlock()
			if err == nil {
				r.bounce(ctx, st, r.errFull())
			}
			return err
		}
	}
	err = r.apply(ctx, user, old, p)
	mu.Unlock()
	if err != nil || !p.forward {
		return err
	}
	if p.unavailable {
		r.sendUnavailable(ctx, user, contact)
	}
	out := st.El.ShallowCopy()
	out.SetAttr("from", user.String()).SetAttr("to", contact.String())
	r.send(ctx, out)
	if p.presence {
		r.sendPresence(ctx, user, contact)
	}
	return nil
}

// apply stores the entry of a plan and pushes it when the roster changed.
// Called with the user's lock held.
func (r *Roster) apply(ctx context.Context, user jid.JID, old *storage.RosterItem, p plan) error {
	if !p.keep {
		if old == nil {
			return nil
		}
		v, err := r.store.DeleteRosterItem(ctx, user, old.Contact)
		if err != nil {
			return err
		}
		if !old.Hidden {
			r.push(user, removedElement(old.Contact), v, nil)
		}
		return nil
	}
	v, changed, err := r.store.PutRosterItem(ctx, user, p.entry)
	if err != nil {
		return err
	}
	if changed {
		r.pushItem(ctx, user, p.entry, v, nil)
	}
	return nil
}

// inboundHook runs for every stanza addressed to a local account:
// subscription stanzas are processed here (Appendix A.3) and delivered by
// the module, so the router does nothing more with them.
func (r *Roster) inboundHook(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind != stanza.KindPresence || !isSubscription(st.Type) {
		return module.Continue
	}
	user, contact := ev.User, st.From.Bare()
	if st.From.IsZero() || contact == user {
		return module.Stop
	}
	if err := r.inbound(ctx, user, contact, st); err != nil {
		r.log.Error("inbound subscription", "user", user.String(), "contact", contact.String(), "type", st.Type, "error", err)
	}
	return module.Stop
}

// inbound is the contact's server (here called the user's: the owner of
// the roster) processing a subscription stanza for the user (§3.1.3,
// §3.1.6, §3.2.3, §3.3.3, §3.4): deliver it if the tables say so, then
// update and push the entry (§3.1.6 and the others require that order),
// then send what the user's server sends on the user's behalf:
// unavailable presence to a contact that unsubscribed (§3.3.3 rule 3),
// the automatic reply (subscribed for a pre-approved or already
// subscribed contact, unsubscribed after an unsubscribe) and the user's
// presence to a contact that is now subscribed.
//
// A request that is not answered stays recorded (with the stanza) and is
// delivered again at each initial presence until answered (§3.1.3 rule
// 4); a request from someone not in the roster is recorded without adding
// an item (the Security Warning of §3.1.3).
func (r *Roster) inbound(ctx context.Context, user, contact jid.JID, st *stanza.Stanza) error {
	mu := r.lock(user)
	old, err := r.entry(ctx, user, contact)
	if err != nil {
		mu.Unlock()
		return err
	}
	p := planInbound(contact, old, st.Type, st.El.String())
	if old == nil && p.keep {
		if full, err := r.full(ctx, user); err != nil || full {
			mu.Unlock()
			if err == nil {
				r.bounce(ctx, st, r.errFull())
			}
			return err
		}
	}
	if p.forward {
		for _, s := range r.host.Sessions(user) {
			// Requests go to available resources (§3.1.3); the other
			// notifications to interested resources too (§3.1.6, §3.2.3,
			// §3.3.3).
			if s.Available() || st.Type != stanza.PresenceSubscribe && interested(s) {
				s.Deliver(st.El)
			}
		}
	}
	err = r.apply(ctx, user, old, p)
	mu.Unlock()
	if err != nil {
		return err
	}
	if p.unavailable {
		r.sendUnavailable(ctx, user, contact)
	}
	if p.autoReply != "" {
		r.send(ctx, subscriptionPresence(p.autoReply, user, contact, st.ID))
	}
	if p.presence {
		r.sendPresence(ctx, user, contact)
	}
	return nil
}

// sendUnavailable sends unavailable presence from each available resource
// of user to contact.
func (r *Roster) sendUnavailable(ctx context.Context, user, contact jid.JID) {
	for _, s := range r.host.Sessions(user) {
		if s.Available() {
			r.send(ctx, stanza.NewPresence(stanza.PresenceUnavailable, contact, s.JID()))
		}
	}
}

// sendPresence sends the current presence of each available resource of
// user to contact (§3.1.5).
func (r *Roster) sendPresence(ctx context.Context, user, contact jid.JID) {
	for _, s := range r.host.Sessions(user) {
		if p := s.Presence(); p != nil && s.Available() {
			c := p.ShallowCopy()
			c.SetAttr("from", s.JID().String()).SetAttr("to", contact.String())
			r.send(ctx, c)
		}
	}
}

// initialPresence delivers the recorded subscription requests to a
// resource that became available (§3.1.3 rule 4: at each new available
// resource, until the user answers).
func (r *Roster) initialPresence(ctx context.Context, s module.Session) {
	user := s.JID().Bare()
	reqs, err := r.store.RosterRequests(ctx, user)
	if err != nil {
		r.log.Error("loading subscription requests", "user", user.String(), "error", err)
		return
	}
	for _, it := range reqs {
		el := parseStanza(it.InboundRequest)
		if el == nil {
			// Not recorded (or unreadable): rebuild a bare request.
			el = subscriptionPresence(stanza.PresenceSubscribe, it.Contact, user, "")
		}
		s.Deliver(el)
	}
}

// parseStanza reads a stanza serialized by Element.String.
func parseStanza(s string) *xmlstream.Element {
	if s == "" {
		return nil
	}
	p := xmlstream.NewParser(xmlstream.ModeFragments, xmlstream.Limits{})
	p.Feed([]byte(s))
	ev, err := p.Next()
	if err != nil || ev.Kind != xmlstream.EventElement {
		return nil
	}
	return ev.Element
}

// userRemoving runs before an account is deleted: every local user with
// the account in the roster loses the item, with a push, and gets
// unavailable presence from the account's available resources if it was
// subscribed to it. Remote contacts get unsubscribe and unsubscribed as
// if the account had removed them (§2.5.2). The storage cleanup deletes
// the rest.
func (r *Roster) userRemoving(ctx context.Context, removed jid.JID) {
	users, err := r.store.ContactsOf(ctx, removed)
	if err != nil {
		r.log.Error("removing account from rosters", "user", removed.String(), "error", err)
	}
	for _, u := range users {
		if u == removed {
			continue
		}
		if err := r.forget(ctx, u, removed); err != nil {
			r.log.Error("removing account from a roster", "user", removed.String(), "roster", u.String(), "error", err)
		}
	}
	items, _, err := r.store.Roster(ctx, removed)
	if err != nil {
		r.log.Error("loading roster of removed account", "user", removed.String(), "error", err)
		return
	}
	reqs, _ := r.store.RosterRequests(ctx, removed)
	for _, it := range reqs {
		if it.Hidden {
			items = append(items, it)
		}
	}
	for _, it := range items {
		if r.host.IsLocal(it.Contact.Domain()) {
			continue
		}
		s := stateOf(&it)
		if s.Sub.HasTo() || s.PendingOut {
			r.send(ctx, subscriptionPresence(stanza.PresenceUnsubscribe, removed, it.Contact, ""))
		}
		if s.Sub.HasFrom() || s.PendingIn {
			r.send(ctx, subscriptionPresence(stanza.PresenceUnsubscribed, removed, it.Contact, ""))
		}
	}
}

// forget deletes removed from user's roster.
func (r *Roster) forget(ctx context.Context, user, removed jid.JID) error {
	it, err := r.entry(ctx, user, removed)
	if err != nil || it == nil {
		return err
	}
	if !it.Hidden && it.Subscription.HasTo() {
		r.sendUnavailable(ctx, removed, user)
	}
	mu := r.lock(user)
	defer mu.Unlock()
	if it, err = r.entry(ctx, user, removed); err != nil || it == nil {
		return err
	}
	v, err := r.store.DeleteRosterItem(ctx, user, removed)
	if err != nil {
		return err
	}
	if !it.Hidden {
		r.push(user, removedElement(removed), v, nil)
	}
	return nil
}

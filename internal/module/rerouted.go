package module

import (
	"context"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

type reroutedKey struct{}

// WithRerouted marks ctx as routing a message again: one that a session
// had received but not acknowledged when it ended without resumption
// (XEP-0198 §4), now sent to the account's bare JID. first is when it was
// first routed to that session: the stamp of its <delay/> (XEP-0198 §4,
// XEP-0203) wherever it ends up, offline storage included. The message
// was archived the first time; it carries that stanza ID (XEP-0359).
// Only the server sets this, never from what a client sent.
func WithRerouted(ctx context.Context, first time.Time) context.Context {
	return context.WithValue(ctx, reroutedKey{}, first)
}

// Rerouted tells whether ctx routes a message again (WithRerouted), and
// when it was first routed. The hooks that count or copy a message once
// per delivery (inbox unread counts, carbons) skip it: they ran the first
// time.
func Rerouted(ctx context.Context) (first time.Time, ok bool) {
	first, ok = ctx.Value(reroutedKey{}).(time.Time)
	return first, ok
}

// RerouteMessage routes again a message that a resource of bare was given
// but never took — its session ended first (XEP-0198 §4, "in the same way
// that it would treat a stanza sent to an unavailable resource", RFC 6121
// §8.5.3.2.1): a copy addressed to the bare JID, with a <delay/> (XEP-0203
// §2) from domain stamped when it was first routed, unless it has one.
// What is not worth routing again is dropped: errors, headlines (ignored,
// §8.5.3.2.1), copies the server made for that resource itself (carbons:
// from the bare JID). It reports whether the message was routed; a
// groupchat message is not (the caller answers the room, or not).
func RerouteMessage(ctx context.Context, route func(context.Context, *stanza.Stanza), bare jid.JID, domain string, el *xmlstream.Element, first time.Time) bool {
	st, err := stanza.Parse(el, stanza.NSClient)
	if err != nil {
		return false
	}
	return RerouteParsed(ctx, route, bare, domain, st, first)
}

// RerouteParsed is RerouteMessage for a stanza its caller parsed already
// (st.El is the message): it is not parsed again.
func RerouteParsed(ctx context.Context, route func(context.Context, *stanza.Stanza), bare jid.JID, domain string, st stanza.Stanza, first time.Time) bool {
	if st.Kind != stanza.KindMessage || st.IsError() || st.From.IsZero() || st.From == bare {
		return false
	}
	switch st.Type {
	case stanza.MessageHeadline, stanza.MessageGroupchat:
		return false
	}
	m := st.El.ShallowCopy()
	m.SetAttr("to", bare.String())
	if m.Child("delay", stanza.NSDelay) == nil {
		m.AddChild(xmlstream.NewElement("delay", stanza.NSDelay).SetAttr("from", domain).
			SetAttr("stamp", stanza.FormatTime(first)))
	}
	st.El, st.To = m, bare
	route(WithRerouted(ctx, first), &st)
	return true
}

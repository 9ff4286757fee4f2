package c2s

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/router"
	"github.com/meerkat-xmpp/meerkat/internal/sasl"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// handleSASL runs SASL negotiation (RFC 6120 §6.4).
func (s *Session) handleSASL(ctx context.Context, el *xmlstream.Element) error {
	if s.srv.cfg.RequireTLS && !s.tr.secure() {
		// Mechanisms are not offered before TLS (§5.3.1).
		return s.saslFailure(&sasl.Failure{Condition: sasl.EncryptionRequired})
	}
	switch el.Name {
	case "auth":
		if s.conv != nil {
			s.conv = nil
			return s.saslFailure(&sasl.Failure{Condition: sasl.MalformedRequest, Text: "authentication already in progress"})
		}
		conv, err := s.srv.sasl[s.domain].Start(el.Attr("mechanism"), s.connInfo())
		if err != nil {
			return s.saslFailure(err)
		}
		// §6.4.2: no text means no initial response; "=" means an empty one.
		var data []byte
		if text := el.Text(); text != "" && text != "=" {
			if data, err = base64.StdEncoding.DecodeString(text); err != nil {
				return s.saslFailure(&sasl.Failure{Condition: sasl.IncorrectEncoding})
			}
		}
		s.conv = conv
		return s.saslStep(ctx, data)
	case "response":
		if s.conv == nil {
			return s.saslFailure(&sasl.Failure{Condition: sasl.MalformedRequest, Text: "no authentication in progress"})
		}
		data, err := base64.StdEncoding.DecodeString(el.Text())
		if err != nil {
			s.conv = nil
			return s.saslFailure(&sasl.Failure{Condition: sasl.IncorrectEncoding})
		}
		return s.saslStep(ctx, data)
	case "abort":
		// §6.4.4.
		s.conv = nil
		return s.saslFailure(&sasl.Failure{Condition: sasl.Aborted})
	}
	s.conv = nil
	return s.saslFailure(&sasl.Failure{Condition: sasl.MalformedRequest})
}

func (s *Session) saslStep(ctx context.Context, in []byte) error {
	out, done, err := s.conv.Step(ctx, in)
	if err != nil {
		s.conv = nil
		return s.saslFailure(err)
	}
	if !done {
		s.sendElement(xmlstream.NewElement("challenge", stanza.NSSASL).AddText(base64.StdEncoding.EncodeToString(out)))
		return nil
	}
	// §6.4.6: success, with the additional data of the mechanism.
	s.authedUser = s.conv.Username()
	s.conv = nil
	success := xmlstream.NewElement("success", stanza.NSSASL)
	if len(out) > 0 {
		success.AddText(base64.StdEncoding.EncodeToString(out))
	}
	s.sendElement(success)
	// The client restarts the stream, maybe in the same packet.
	s.tr.restart()
	s.mu.Lock()
	s.headerSent = false
	s.mu.Unlock()
	s.streamID = randomID()
	return nil
}

// saslFailure reports a failed attempt (§6.5) and closes the stream after
// too many (§6.4.5).
func (s *Session) saslFailure(err error) error {
	f := &sasl.Failure{Condition: sasl.NotAuthorized}
	if !errors.As(err, &f) {
		s.srv.log.Error("SASL failed", "error", err)
		f = &sasl.Failure{Condition: sasl.TemporaryAuthFailure}
	}
	el := xmlstream.NewElement("failure", stanza.NSSASL).AddChild(xmlstream.NewElement(string(f.Condition), stanza.NSSASL))
	if f.Text != "" {
		el.AddChild(xmlstream.NewElement("text", stanza.NSSASL).SetAttrNS(stanza.NSXML, "lang", "en").AddText(f.Text))
	}
	s.sendElement(el)
	s.authFails++
	if s.authFails >= s.srv.cfg.MaxAuthFailures {
		return s.fail(stanza.StreamPolicyViolation, "too many failed authentication attempts")
	}
	return nil
}

// handlePreAuthIQ offers an IQ sent before authentication to the module
// registered for it with module.TargetStream (in-band registration); it
// reports whether one was.
func (s *Session) handlePreAuthIQ(ctx context.Context, el *xmlstream.Element) (bool, error) {
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil || st.Type != stanza.IQGet && st.Type != stanza.IQSet {
		return false, nil
	}
	if !st.To.IsZero() && st.To.String() != s.domain {
		return false, nil
	}
	h := s.srv.hooks.IQHandler(st.Type, module.TargetStream, st.Payload().NS)
	if h == nil {
		return false, nil
	}
	st.To = jid.MustParse(s.domain)
	res, err := h(ctx, &module.IQ{Stanza: &st, Target: module.TargetStream})
	var reply *xmlstream.Element
	switch {
	case err == nil:
		reply = stanza.NewIQ(stanza.IQResult, st.ID, jid.JID{}, jid.JID{}, res)
	case errors.Is(err, module.ErrReplied):
		return true, nil
	default:
		var se *stanza.Error
		if !errors.As(err, &se) {
			s.srv.log.Error("pre-authentication IQ handler failed", "ns", st.Payload().NS, "error", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		reply = stanza.ErrorReply(el, se)
		reply.RemoveAttr("from")
		reply.RemoveAttr("to")
	}
	s.sendElement(reply)
	return true, nil
}

// handleBindPhaseIQ handles IQs between authentication and binding: only
// resource binding and the legacy session request are allowed.
func (s *Session) handleBindPhaseIQ(ctx context.Context, el *xmlstream.Element) error {
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr == nil && st.Type == stanza.IQSet {
		if p := st.Payload(); p.NS == stanza.NSBind && p.Name == "bind" {
			return s.bind(ctx, &st)
		}
	}
	// RFC 6120 §7.1: nothing but binding before a resource is bound.
	return s.fail(stanza.StreamNotAuthorized, "bind a resource first")
}

// bind binds a resource (RFC 6120 §7.6) and registers the session.
func (s *Session) bind(ctx context.Context, st *stanza.Stanza) error {
	reply := func(e *stanza.Error) error {
		r := stanza.ErrorReply(st.El, e)
		r.RemoveAttr("to")
		s.sendElement(r)
		return nil
	}
	res := st.Payload().ChildText("resource", stanza.NSBind)
	if res == "" {
		res = randomID()
	}
	full, err := jid.New(s.authedUser, s.domain, res)
	if err != nil {
		// §7.7.2.1: a resource that cannot be prepared.
		return reply(stanza.NewError(stanza.BadRequest, "invalid resource"))
	}
	s.jid = full
	result := stanza.NewIQ(stanza.IQResult, st.ID, jid.JID{}, jid.JID{},
		xmlstream.NewElement("bind", stanza.NSBind).AddChild(xmlstream.NewElement("jid", stanza.NSBind).AddText(full.String())))
	// Register and queue the result under the output lock, so that no
	// stanza routed to the new session can overtake the result.
	s.mu.Lock()
	replaced, err := s.srv.router.Register(s)
	if err == nil {
		// Under mu: a Close from another goroutine (a shutdown) must
		// see that the session is in the router, to take it out.
		s.bound = true
		s.appendLocked(result)
		s.startFlushLocked()
	}
	s.mu.Unlock()
	if errors.Is(err, router.ErrTooManySessions) {
		s.jid = jid.JID{}
		// §7.6.2.1: too many resources for this account.
		return reply(stanza.NewError(stanza.ResourceConstraint, "too many sessions for this account"))
	}
	if err != nil {
		return err
	}
	if old, ok := replaced.(*Session); ok {
		// §7.7.2.2: the new session wins; the old one gets <conflict/>.
		old.replaced.Store(true)
	}
	if replaced != nil {
		replaced.Close(stanza.NewStreamError(stanza.StreamConflict, "replaced by a new session"))
	}
	for _, h := range s.srv.hooks.SessionOpened.Hooks() {
		h.Fn(ctx, s)
	}
	return nil
}

// The session legacy request (RFC 3921 §3) is answered by a module-less
// core handler: see sessionIQ.
var _ module.IQHandler = sessionIQ

// sessionIQ answers <session/> with an empty result (RFC 6121 Appendix E).
func sessionIQ(context.Context, *module.IQ) (*xmlstream.Element, error) { return nil, nil }

// RegisterCoreHandlers attaches the IQ handlers that are part of the c2s
// core rather than of a module.
func RegisterCoreHandlers(h *module.Hooks) error {
	// Old clients address it to the server, newer ones to nobody.
	return errors.Join(
		h.HandleIQ("c2s", stanza.IQSet, module.TargetSelf, stanza.NSSession, sessionIQ),
		h.HandleIQ("c2s", stanza.IQSet, module.TargetHost, stanza.NSSession, sessionIQ))
}

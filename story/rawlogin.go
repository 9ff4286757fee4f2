package story

import (
	"context"
	"fmt"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// DialRawLogin is DialRaw followed by a login: the stream opened (with
// STARTTLS first over TCP), acct authenticated, the stream opened again
// and, unless resource is "", the resource bound, whose full JID it
// returns. Tests of the wire after login and benchmarks (a Raw has no
// reader goroutine) start from it; the connection is closed on error.
func DialRawLogin(ctx context.Context, srv Server, t Transport, acct Account, resource string) (*Raw, jid.JID, error) {
	r, err := DialRaw(ctx, srv, t)
	if err != nil {
		return nil, jid.JID{}, err
	}
	full, err := rawLogin(r, srv.Domain(), t, acct, resource)
	if err != nil {
		r.Close()
		return nil, jid.JID{}, fmt.Errorf("story: raw login of %s: %w", acct.Localpart, err)
	}
	return r, full, nil
}

func rawLogin(r *Raw, domain string, t Transport, acct Account, resource string) (jid.JID, error) {
	if _, err := r.OpenStream(domain); err != nil {
		return jid.JID{}, err
	}
	if t == TCP {
		if err := r.StartTLS(); err != nil {
			return jid.JID{}, err
		}
		if _, err := r.OpenStream(domain); err != nil {
			return jid.JID{}, err
		}
	}
	if _, err := r.Auth(acct.Localpart, acct.Password); err != nil {
		return jid.JID{}, err
	}
	if _, err := r.OpenStream(domain); err != nil {
		return jid.JID{}, err
	}
	if resource == "" {
		return jid.JID{}, nil
	}
	return r.Bind(resource)
}

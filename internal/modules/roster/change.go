package roster

import (
	"context"
	"errors"
	"fmt"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
)

// serverChange is the module's Hooks.RosterChange: a change of a user's
// roster made by the server for another module (MUC Light's room items),
// made like a roster set (§2.3, §2.5) under the user's lock, so that it
// cannot interleave with the client's own changes, and pushed like one
// (§2.1.6: to the interested resources, with the version, §2.6.3), with
// no resource that made it. A removal sends no subscription stanzas:
// the server, not the user, ends the item. max_items does not apply:
// the other module bounds what it adds (MUC Light's rooms_per_user).
func (r *Roster) serverChange(ctx context.Context, ch module.RosterChange) (bool, error) {
	if !ch.User.IsBare() || !ch.Contact.IsBare() || ch.User == ch.Contact {
		return false, fmt.Errorf("roster: change of %s in the roster of %s: bare JIDs of two accounts expected", ch.Contact, ch.User)
	}
	if !r.host.IsLocal(ch.User.Domain()) {
		return false, fmt.Errorf("roster: %s is not a local account", ch.User)
	}
	sub := storage.Subscription(ch.Subscription)
	switch sub {
	case storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth:
	case "":
		sub = storage.SubNone
	default:
		if !ch.Remove {
			return false, fmt.Errorf("roster: subscription %q", ch.Subscription)
		}
	}
	mu := r.lock(ch.User)
	defer mu.Unlock()
	old, err := r.entry(ctx, ch.User, ch.Contact)
	if err != nil {
		return false, err
	}
	if ch.Remove {
		if old == nil || old.Hidden {
			return false, nil
		}
		v, err := r.store.DeleteRosterItem(ctx, ch.User, ch.Contact)
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		r.push(ch.User, removedElement(ch.Contact), v, nil)
		return true, nil
	}
	it := storage.RosterItem{Contact: ch.Contact}
	if old != nil {
		it = *old
	}
	it.Name, it.Groups, it.Subscription, it.Hidden = ch.Name, ch.Groups, sub, false
	v, changed, err := r.store.PutRosterItem(ctx, ch.User, it)
	if err != nil || !changed {
		return false, err
	}
	r.pushItem(ctx, ch.User, it, v, nil)
	return true, nil
}

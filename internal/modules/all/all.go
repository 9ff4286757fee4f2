// Package all pulls in every feature module: each registers itself from
// its init function. Adding a module is one folder and one line here.
package all

import (
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/blocking"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/carbons"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/csi"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/disco"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/entitytime"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/inbox"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/last"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/mam"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/muclight"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/offline"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/ping"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/presence"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/private"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/register"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/roster"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/vcard"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/version"
)

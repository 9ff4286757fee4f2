// Package all pulls in every feature module: each registers itself from
// its init function. Adding a module is one folder and one line here.
package all

import (
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/disco"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/entitytime"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/ping"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/version"
)

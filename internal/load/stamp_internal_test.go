package load

import "github.com/meerkat-xmpp/meerkat/xmlstream"

func parse(b []byte) (*xmlstream.Element, error) { return xmlstream.Parse(b) }

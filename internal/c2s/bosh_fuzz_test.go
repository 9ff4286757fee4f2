package c2s

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// FuzzParseBOSHBody: any request body is parsed within the limits or
// refused, never a panic; what is accepted is one <body/> whose children
// are no longer in the httpbind namespace.
func FuzzParseBOSHBody(f *testing.F) {
	for _, seed := range []string{
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='localhost' hold='1' wait='60' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>",
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='2' sid='abc'><message to='a@b'><body>hi</body></message></body>",
		"<body rid='3' sid='abc' xmlns='http://jabber.org/protocol/httpbind'><iq xmlns='jabber:client' type='set' id='1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq></body>",
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='4' sid='abc' type='terminate'><presence type='unavailable' xmlns='jabber:client'/></body>",
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='5' sid='abc' xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'/>",
		"<?xml version='1.0'?><body xmlns='http://jabber.org/protocol/httpbind'/>",
	} {
		f.Add([]byte(seed))
	}
	lim := xmlstream.Limits{MaxElementBytes: 4096, MaxTextBytes: 4096, MaxAttrBytes: 1024, MaxDepth: 16, MaxAttrs: 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := parseBOSHBody(data, lim)
		if err != nil {
			return
		}
		if body.Name != "body" || body.NS != NSBOSH {
			t.Fatalf("accepted %s", body.AppendStandalone(nil))
		}
		for el := range body.Elements() {
			if el.NS == NSBOSH {
				t.Fatalf("child left in the httpbind namespace: %s", el.AppendStandalone(nil))
			}
		}
	})
}

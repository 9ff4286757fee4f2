package load

import (
	"strconv"
	"strings"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NSStamp is the namespace of the load tool's send stamp:
// <ts xmlns='urn:meerkat:load:0' us='1732412345123456'/>, the sender's
// wall clock in microseconds since the Unix epoch, taken just before the
// write. Servers keep unknown children of messages and presences, so
// the receiver finds it where the sender put it.
const NSStamp = "urn:meerkat:load:0"

// pad is the body text, sliced to the configured size; longer bodies
// are built per message (senders run concurrently: pad never changes).
var pad = strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 1<<10/56+1)

func body(n int) string {
	if n <= len(pad) {
		return pad[:n]
	}
	return strings.Repeat(pad, n/len(pad)+1)[:n]
}

// Message returns a stamped message of type typ to to, with a body of n
// bytes, stamped now.
func Message(to, typ, id string, n int) []byte {
	b := make([]byte, 0, 200+n)
	b = append(b, "<message xmlns='jabber:client' to='"...)
	b = xmlstream.AppendEscapedAttr(b, to)
	b = append(b, "' type='"...)
	b = append(b, typ...)
	b = append(b, "' id='"...)
	b = append(b, id...)
	b = append(b, "'><body>"...)
	b = append(b, body(n)...)
	b = append(b, "</body>"...)
	return appendStamp(b, "</message>")
}

// Presence returns a stamped directed presence to to.
func Presence(to, status string) []byte {
	b := make([]byte, 0, 200)
	b = append(b, "<presence xmlns='jabber:client' to='"...)
	b = xmlstream.AppendEscapedAttr(b, to)
	b = append(b, "'><status>"...)
	b = xmlstream.AppendEscapedText(b, status)
	b = append(b, "</status>"...)
	return appendStamp(b, "</presence>")
}

func appendStamp(b []byte, end string) []byte {
	b = append(b, "<ts xmlns='"+NSStamp+"' us='"...)
	b = strconv.AppendInt(b, time.Now().UnixMicro(), 10)
	b = append(b, "'/>"...)
	return append(b, end...)
}

// Stamp returns the send time stamped in el, whether it has one, and
// whether el carries <delay/> (XEP-0203: stored and delivered later,
// so no TTD).
func Stamp(el *xmlstream.Element) (sent time.Time, ok, delayed bool) {
	ts := el.Child("ts", NSStamp)
	if ts == nil {
		return time.Time{}, false, false
	}
	us, err := strconv.ParseInt(ts.Attr("us"), 10, 64)
	if err != nil {
		return time.Time{}, false, false
	}
	return time.UnixMicro(us), true, el.Child("delay", stanza.NSDelay) != nil
}
